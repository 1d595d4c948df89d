"""What the recovery app listens to: the indexer's events (guardians and requests follow the
GuardianExecutor), operation changes (a proposal that never reached the chain), and the
resilience card's question (how many guardians)."""

from collections.abc import Iterable
from typing import Any

from django.dispatch import receiver
from django.urls import reverse

from accounts.models import User
from chain.models import ChainOperation
from chain.signals import events_indexed, operation_changed
from passkeys.selectors import resilience_facts
from recovery import services
from recovery.selectors import guardian_counts

EXECUTOR_EVENTS = frozenset((*services.GUARDIAN_EVENTS, *services.RECOVERY_EVENTS))
NO_GUARDIAN = "no_guardian"


@receiver(events_indexed)
def follow_executor_events(
    sender: Any, chain_id: int, events: Iterable[tuple[str, str, str]], **kwargs: Any
) -> tuple[str, int]:
    touched = [(name, account) for name, account, _ in events if name in EXECUTOR_EVENTS]
    guardians = {account for name, account in touched if name in services.GUARDIAN_EVENTS}
    recoveries = {account for name, account in touched if name in services.RECOVERY_EVENTS}
    changed = 0
    if guardians:
        changed += services.follow_guardian_events(chain_id=chain_id, accounts=guardians)
    if recoveries or guardians:
        changed += services.follow_recovery_events(
            chain_id=chain_id, accounts=recoveries | guardians
        )
    return "recovery", changed


@receiver(operation_changed)
def follow_operations(sender: Any, operations: list[ChainOperation], **kwargs: Any) -> None:
    for operation in operations:
        services.follow_operation(operation)


@receiver(resilience_facts)
def guardian_facts(sender: Any, user: User, **kwargs: Any) -> dict[str, Any]:
    counts = guardian_counts(user=user)
    total = counts["guardians"] + counts["recovery_keys"]
    url = reverse("account-recovery")
    if not total:
        note = {
            "code": NO_GUARDIAN,
            "kind": "warning",
            "text": "No guardian: if you lose every device, nobody can help you recover your "
            "account.",
            "url": url,
            "action": "Add a guardian",
        }
    else:
        note = {
            "code": "guardians",
            "kind": "ok",
            "text": f"{counts['guardians']} guardian(s) and {counts['recovery_keys']} recovery "
            "key(s) can help you recover your account.",
            "url": url,
            "action": "Manage guardians",
        }
    return {"facts": counts, "warnings": [] if total else [NO_GUARDIAN], "notes": [note]}
