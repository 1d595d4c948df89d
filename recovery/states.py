"""The allowed moves of guardians and recovery requests, written once. Services move them only
through `move_guardian` and `move_request` (under a row lock)."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from recovery.models import Guardian, RecoveryRequest

G = Guardian.Status
R = RecoveryRequest.Status

GUARDIAN_TRANSITIONS: dict[str, frozenset[str]] = {
    # Accepted on chain (GuardianAdded), or withdrawn / never confirmed / removed on chain.
    G.PROPOSED: frozenset({G.ACTIVE, G.REMOVED}),
    # Removed on chain (GuardianRemoved); back to proposed when a reorg took GuardianAdded away.
    G.ACTIVE: frozenset({G.REMOVED, G.PROPOSED}),
    # Only a reorg that took GuardianRemoved away brings a removed guardian back.
    G.REMOVED: frozenset({G.PROPOSED, G.ACTIVE}),
}

REQUEST_TRANSITIONS: dict[str, frozenset[str]] = {
    # A guardian's initializeRecovery is on chain; or the owner / a guardian stopped it; or no
    # guardian approved in time.
    R.PENDING_APPROVAL: frozenset({R.INITIATED, R.DISCARDED, R.EXPIRED}),
    # finalizeRecovery ran; discardRecovery (or removing the approving guardian) ran; the
    # validity window closed. Back to pending when a reorg took RecoveryInitiated away.
    R.INITIATED: frozenset({R.FINALIZED, R.DISCARDED, R.EXPIRED, R.PENDING_APPROVAL}),
    R.FINALIZED: frozenset(),
    R.DISCARDED: frozenset(),
    # A guardian's initializeRecovery reached the chain after the portal let the request expire:
    # open again, as on chain, so that the owner sees it and can cancel it.
    R.EXPIRED: frozenset({R.INITIATED}),
}
ENDED = frozenset({R.FINALIZED, R.DISCARDED, R.EXPIRED})


class StateRefused(Exception):
    pass


@transaction.atomic
def move_guardian(*, guardian_id: int, to: str, **fields: Any) -> Guardian:
    guardian = Guardian.objects.select_for_update().get(pk=guardian_id)
    if guardian.status != to:
        if to not in GUARDIAN_TRANSITIONS[guardian.status]:
            raise StateRefused(f"guardian {guardian_id}: {guardian.status} → {to}")
        guardian.status = to
        if to == G.ACTIVE:
            guardian.activated_at = timezone.now()
        if to == G.REMOVED:
            guardian.removed_at = timezone.now()
    for name, value in fields.items():
        setattr(guardian, name, value)
    guardian.save()
    return guardian


@transaction.atomic
def move_request(*, request_id: int, to: str, **fields: Any) -> RecoveryRequest:
    request = RecoveryRequest.objects.select_for_update().get(pk=request_id)
    if request.status != to:
        if to not in REQUEST_TRANSITIONS[request.status]:
            raise StateRefused(f"recovery {request_id}: {request.status} → {to}")
        request.status = to
        if to in ENDED:
            request.ended_at = timezone.now()
        else:
            request.ended_at = None
    for name, value in fields.items():
        setattr(request, name, value)
    request.save()
    return request
