"""The ChainOperation state machine: every allowed status change is written here, once."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from chain.models import ChainOperation
from chain.signals import operation_changed

Status = ChainOperation.Status

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.AWAITING_SIGNATURE: frozenset({Status.SIGNED, Status.EXPIRED, Status.FAILED}),
    Status.SIGNED: frozenset({Status.SUBMITTED, Status.FAILED}),
    # SUBMITTED → SUBMITTED: a replacement with a higher fee, or the same transaction re-sent.
    Status.SUBMITTED: frozenset({Status.SUBMITTED, Status.INCLUDED, Status.FAILED}),
    # INCLUDED → SUBMITTED: a reorg took the block away; the transaction is pending again.
    Status.INCLUDED: frozenset({Status.CONFIRMED, Status.SUBMITTED, Status.FAILED}),
    Status.CONFIRMED: frozenset(),
    Status.FAILED: frozenset(),
    Status.EXPIRED: frozenset(),
}
FINAL = frozenset(status for status, nexts in TRANSITIONS.items() if not nexts)
TIMESTAMP_OF: dict[str, str] = {
    Status.SIGNED: "signed_at",
    Status.SUBMITTED: "submitted_at",
    Status.INCLUDED: "included_at",
    Status.CONFIRMED: "confirmed_at",
}


class TransitionRefused(Exception):
    def __init__(self, operation: ChainOperation, to: str) -> None:
        super().__init__(f"operation {operation.pk}: {operation.status} → {to} is not allowed")
        self.operation = operation
        self.to = to


def can_transition(*, from_status: str, to: str) -> bool:
    return to in TRANSITIONS[from_status]


@transaction.atomic
def transition(
    *, operation_id: int, to: str, expect: str | None = None, **fields: Any
) -> ChainOperation:
    """Move an operation to `to` under a row lock, setting `fields` with it.

    With `expect`, the change happens only from that status: a worker that lost a race (the
    operation moved on meanwhile) gets TransitionRefused instead of undoing someone else's work.
    """
    operation = ChainOperation.objects.select_for_update().get(pk=operation_id)
    if (expect is not None and operation.status != expect) or not can_transition(
        from_status=operation.status, to=to
    ):
        raise TransitionRefused(operation, to)
    now = timezone.now()
    operation.status = to
    if to in TIMESTAMP_OF:
        setattr(operation, TIMESTAMP_OF[to], now)
    if to in FINAL:
        operation.finished_at = now
    for name, value in fields.items():
        setattr(operation, name, value)
    operation.save()
    transaction.on_commit(
        lambda: operation_changed.send(sender=ChainOperation, operation=operation)
    )
    return operation
