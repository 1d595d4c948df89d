"""Celery tasks of the chain app: thin wrappers around the operation pipeline and the indexer.

Pipeline tasks are acks_late (settings): a task re-delivered after a worker died finds the
operation's state in the database and carries on from there; the submission never sends a second
transaction.
"""

import logging
import random

from celery import Task, shared_task
from django.conf import settings
from requests.exceptions import RequestException

from chain.budgets import check_budgets
from chain.client import ChainUnavailable
from chain.indexer import IndexerError, index_chain
from chain.models import Deployment
from chain.pipeline.submit import note_error, submit
from chain.pipeline.tick import tick
from chain.pipeline.track import track

logger = logging.getLogger(__name__)

# Follow an operation in flight for this many polls; after that the beat tick looks after it.
MAX_POLLS = 40


def _backoff(retries: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to `cap`."""
    delay: float = min(cap, base * 2**retries)
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret


def _chain_unavailable(operation_id: int, exc: ChainUnavailable) -> None:
    """The operation shows people a generic reason; the log keeps the (redacted) detail."""
    logger.warning("operation %s: chain unavailable: %s", operation_id, exc.detail)
    note_error(operation_id=operation_id, error=str(exc))


@shared_task(bind=True, max_retries=None, acks_late=True)
def submit_operation(self: Task, operation_id: int) -> str:  # type: ignore[type-arg]
    """Send a signed operation, then follow it until it is final (or hand it to the tick)."""
    try:
        outcome = submit(operation_id=operation_id)
    except ChainUnavailable as exc:
        _chain_unavailable(operation_id, exc)
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    if outcome.follow is not None:
        track_operation.apply_async((outcome.follow,), countdown=0.2)
    return outcome.status


@shared_task(bind=True, max_retries=MAX_POLLS, acks_late=True)
def track_operation(self: Task, operation_id: int) -> str:  # type: ignore[type-arg]
    """Look at an operation in flight; again a little later while it is not final."""
    try:
        outcome = track(operation_id=operation_id)
    except ChainUnavailable as exc:
        _chain_unavailable(operation_id, exc)
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    if outcome.pending and self.request.retries < MAX_POLLS:
        raise self.retry(countdown=_backoff(self.request.retries, base=0.25, cap=10.0))
    return outcome.status


@shared_task(acks_late=True, ignore_result=True)
def pipeline_tick() -> dict[str, int]:
    """Beat: expire unsigned operations, re-dispatch signed ones, track those in flight."""
    result = tick()
    return {"expired": result.expired, "dispatched": result.dispatched, "tracked": result.tracked}


# One tick moves the cursor at most this many batches: a long backfill is spread over ticks.
BATCHES_PER_TICK = 10


@shared_task(ignore_result=True)
def index_chain_task() -> int | None:
    """Index new blocks of CHAIN_ID; a no-op until the contracts are deployed. Returns the number
    of events added (None when skipped). A failed tick is not retried: the next one reads on."""
    if not Deployment.objects.filter(chain_id=settings.CHAIN_ID).exists():
        logger.debug("indexer: no contracts deployed on chain %s; nothing to do", settings.CHAIN_ID)
        return None
    try:
        result = index_chain(max_blocks=BATCHES_PER_TICK * settings.CHAIN_INDEXER_BATCH_BLOCKS)
    except (RequestException, OSError, IndexerError) as exc:
        logger.warning("indexer: chain %s unavailable: %s", settings.CHAIN_ID, exc)
        return None
    if result.skipped:
        logger.debug("indexer: chain %s skipped (%s)", settings.CHAIN_ID, result.skipped)
        return None
    if result.events_added or result.events_removed or result.reorgs:
        logger.info(
            "indexer: chain %s to block %s: %d events added, %d removed, %d reorgs",
            settings.CHAIN_ID,
            result.to_block,
            result.events_added,
            result.events_removed,
            result.reorgs,
        )
    return result.events_added


@shared_task(ignore_result=True)
def check_budgets_task() -> list[str]:
    """Beat: tell operators when a budget runs out or a balance runs low."""
    return check_budgets()
