"""Celery tasks of the operation pipeline: thin wrappers around chain.pipeline.

Tasks are acks_late (settings): a task re-delivered after a worker died finds the operation's
state in the database and carries on from there; the submission never sends a second transaction.
"""

import random

from celery import Task, shared_task

from chain import pipeline

# Follow an operation in flight for this many polls; after that the beat tick looks after it.
MAX_POLLS = 40


def _backoff(retries: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to `cap`."""
    delay: float = min(cap, base * 2**retries)
    return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not a secret


@shared_task(bind=True, max_retries=None, acks_late=True)
def submit_operation(self: Task, operation_id: int) -> str:  # type: ignore[type-arg]
    """Send a signed operation, then follow it until it is final (or hand it to the tick)."""
    try:
        outcome = pipeline.submit(operation_id=operation_id)
    except pipeline.ChainUnavailable as exc:
        pipeline.note_error(operation_id=operation_id, error=str(exc))
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    if outcome.pending:
        track_operation.apply_async((operation_id,), countdown=0.2)
    return outcome.status


@shared_task(bind=True, max_retries=MAX_POLLS, acks_late=True)
def track_operation(self: Task, operation_id: int) -> str:  # type: ignore[type-arg]
    """Look at an operation in flight; again a little later while it is not final."""
    try:
        outcome = pipeline.track(operation_id=operation_id)
    except pipeline.ChainUnavailable as exc:
        pipeline.note_error(operation_id=operation_id, error=str(exc))
        raise self.retry(countdown=_backoff(self.request.retries), exc=exc) from exc
    if outcome.pending and self.request.retries < MAX_POLLS:
        raise self.retry(countdown=_backoff(self.request.retries, base=0.25, cap=10.0))
    return outcome.status


@shared_task(acks_late=True, ignore_result=True)
def pipeline_tick() -> dict[str, int]:
    """Beat: expire unsigned operations, re-dispatch signed ones, track those in flight."""
    result = pipeline.tick()
    return {"expired": result.expired, "dispatched": result.dispatched, "tracked": result.tracked}
