"""The ChainOperation state machine: every allowed status change is written here, once."""

from collections.abc import Mapping, Sequence
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
        lambda: operation_changed.send(sender=ChainOperation, operations=[operation])
    )
    return operation


@transaction.atomic
def transition_many(
    *,
    operation_ids: Sequence[int],
    to: str,
    expect: str,
    fields: Mapping[int, Mapping[str, Any]] | None = None,
    partial: bool = False,
    **common: Any,
) -> list[ChainOperation]:
    """Move every operation of a bundle from `expect` to `to` in one statement, under their row
    locks: `common` fields for all, `fields[id]` for one; returns them, moved. All or none:
    TransitionRefused (nothing changed) when any of them is not in `expect` any more; with
    `partial`, those are left as they are (someone else moved them) and the others move."""
    fields = fields or {}
    locked = list(
        ChainOperation.objects.select_for_update().filter(pk__in=operation_ids).order_by("pk")
    )
    if len(locked) != len(set(operation_ids)):
        raise ChainOperation.DoesNotExist(f"operations {sorted(operation_ids)}")
    operations = [op for op in locked if op.status == expect] if partial else locked
    if not operations:
        return []
    now = timezone.now()
    shared: dict[str, Any] = {"status": to, "updated_at": now, **common}
    if to in TIMESTAMP_OF:
        shared[TIMESTAMP_OF[to]] = now
    if to in FINAL:
        shared["finished_at"] = now
    for operation in operations:
        if operation.status != expect or not can_transition(from_status=operation.status, to=to):
            raise TransitionRefused(operation, to)
        for name, value in {**shared, **fields.get(operation.pk, {})}.items():
            setattr(operation, name, value)
    # One UPDATE for what they share, a per-operation field given the same value for all
    # included; the others (a bundle's indexes, its transaction on its first operation) with
    # bulk_update, each over the operations that set it: its CASE costs CPU per operation.
    setters: dict[str, list[ChainOperation]] = {}
    for operation in operations:
        for name in fields.get(operation.pk, {}):
            setters.setdefault(name, []).append(operation)
    own: dict[tuple[int, ...], list[str]] = {}
    for name, setting in setters.items():
        values = [fields[op.pk][name] for op in setting]
        if len(setting) == len(operations) and all(value == values[0] for value in values):
            shared[name] = values[0]
        else:
            own.setdefault(tuple(op.pk for op in setting), []).append(name)
    ChainOperation.objects.filter(pk__in=[op.pk for op in operations]).update(**shared)
    for ids, names in own.items():
        subset = [op for op in operations if op.pk in ids]
        ChainOperation.objects.bulk_update(subset, fields=sorted(names))

    def announce() -> None:
        # The receivers' writes (read models) of the whole bundle in one transaction.
        with transaction.atomic():
            operation_changed.send(sender=ChainOperation, operations=operations)

    transaction.on_commit(announce)
    return operations
