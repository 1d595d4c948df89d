"""The beat tick: the database is the queue, and this is what keeps it moving."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.utils import timezone

from chain.client import ChainUnavailable
from chain.models import ChainOperation
from chain.pipeline.submit import dispatch_submission
from chain.pipeline.track import track
from chain.transitions import TransitionRefused, transition

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

# Signed operations idle this long are re-dispatched by the tick.
STALE_SIGNED = timedelta(seconds=10)
TRACK_BATCH = 200


def expire_operations() -> int:
    """Expire every operation that was not signed in time."""
    expired = 0
    stale = ChainOperation.objects.filter(
        status=Status.AWAITING_SIGNATURE, expires_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for operation_id in list(stale):
        try:
            transition(
                operation_id=operation_id, to=Status.EXPIRED, expect=Status.AWAITING_SIGNATURE
            )
            expired += 1
        except TransitionRefused:
            pass
    return expired


@dataclass(frozen=True)
class TickResult:
    expired: int
    dispatched: int
    tracked: int


def tick() -> TickResult:
    """What beat runs every CHAIN_TICK_SECONDS: expire unsigned operations, dispatch signed ones
    nobody picked up (a lost task, a broker that was down), and track the ones in flight."""
    expired = expire_operations()
    idle_since = timezone.now() - STALE_SIGNED
    waiting = ChainOperation.objects.filter(
        status=Status.SIGNED, updated_at__lte=idle_since
    ).values_list("pk", flat=True)
    dispatched = 0
    for operation_id in list(waiting[:TRACK_BATCH]):
        if not dispatch_submission(operation_id):
            break
        # Touch it, so that the next tick does not queue it again while it waits for a worker.
        ChainOperation.objects.filter(pk=operation_id, status=Status.SIGNED).update(
            updated_at=timezone.now()
        )
        dispatched += 1
    tracked = 0
    in_flight = ChainOperation.objects.filter(
        status__in=[Status.SUBMITTED, Status.INCLUDED]
    ).order_by("updated_at")
    # Tracking one operation of a relayer bundle moves the others in its state with it.
    bundles_seen: set[tuple[str, str]] = set()
    for operation_id, status, tx_hash, bundle_index in list(
        in_flight.values_list("pk", "status", "tx_hash", "bundle_index")[:TRACK_BATCH]
    ):
        if bundle_index is not None:
            if (status, tx_hash) in bundles_seen:
                continue
            bundles_seen.add((status, tx_hash))
        try:
            track(operation_id=operation_id)
        except ChainUnavailable as exc:
            logger.warning("pipeline tick: chain unavailable: %s", exc.detail)
            break
        tracked += 1
    return TickResult(expired=expired, dispatched=dispatched, tracked=tracked)
