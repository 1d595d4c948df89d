"""Queries of the recovery app."""

import uuid

from django.conf import settings
from django.db.models import QuerySet
from eth_abi import decode

from accounts.models import SmartAccount, User
from accounts.selectors import smart_account_of
from chain.models import ChainOperation
from chain.selectors import deployment_addresses
from recovery.models import OPEN_STATUSES, Guardian, RecoveryRequest

INSTALL_EXECUTOR = "install_guardian_executor"
LIVE_OPERATION = (
    ChainOperation.Status.AWAITING_SIGNATURE,
    ChainOperation.Status.SIGNED,
    ChainOperation.Status.SUBMITTED,
    ChainOperation.Status.INCLUDED,
)


def executor_address() -> str | None:
    return deployment_addresses().get("GuardianExecutor")


def executor_installed(*, account: SmartAccount) -> bool:
    """Was the GuardianExecutor installed on `account`: by its deployment (accounts opened since
    the executor exists), or by a confirmed installModule operation?"""
    executor = executor_address()
    if executor is None:
        return False
    modules, _ = decode(["address[]", "bytes[]"], bytes(account.init_data)[4:])
    if executor.lower() in {str(module).lower() for module in modules}:
        return True
    return ChainOperation.objects.filter(
        chain_id=account.chain_id,
        account=account.address,
        kind=INSTALL_EXECUTOR,
        status=ChainOperation.Status.CONFIRMED,
    ).exists()


def live_guardians(*, account: SmartAccount) -> QuerySet[Guardian]:
    return Guardian.objects.filter(account=account).exclude(status=Guardian.Status.REMOVED)


def guardians_of(*, user: User) -> list[Guardian]:
    """The guardians of the user's account (removed ones included), oldest first."""
    account = smart_account_of(user=user)
    if account is None:
        return []
    return list(
        Guardian.objects.filter(account=account).select_related(
            "guardian_user", "proposal_operation", "acceptance_operation", "removal_operation"
        )
    )


def guarding(*, user: User) -> list[Guardian]:
    """The accounts the user guards or is invited to guard (not removed)."""
    return list(
        Guardian.objects.filter(guardian_user=user)
        .exclude(status=Guardian.Status.REMOVED)
        .select_related("account__user", "acceptance_operation")
    )


def open_request(*, account: SmartAccount) -> RecoveryRequest | None:
    return RecoveryRequest.objects.filter(account=account, status__in=OPEN_STATUSES).first()


def request_by_public_id(public_id: uuid.UUID | str) -> RecoveryRequest | None:
    return (
        RecoveryRequest.objects.filter(public_id=public_id)
        .select_related("account", "user", "approved_by__guardian_user")
        .first()
    )


def requests_for_owner(*, user: User) -> list[RecoveryRequest]:
    """Open recoveries of the user's own account: every page they open shows them."""
    return list(
        RecoveryRequest.objects.filter(user=user, status__in=OPEN_STATUSES).select_related(
            "approved_by__guardian_user", "discard_operation"
        )
    )


def requests_for_guardian(*, user: User) -> list[RecoveryRequest]:
    """Open recoveries of accounts the user actively guards."""
    accounts = Guardian.objects.filter(
        guardian_user=user, status=Guardian.Status.ACTIVE
    ).values_list("account_id", flat=True)
    return list(
        RecoveryRequest.objects.filter(
            account_id__in=list(accounts), status__in=OPEN_STATUSES
        ).select_related("user", "account", "approved_by__guardian_user")
    )


def invitations_for(*, user: User) -> list[Guardian]:
    """Guardian proposals on chain that the user has not accepted yet."""
    return list(
        Guardian.objects.filter(
            guardian_user=user, status=Guardian.Status.PROPOSED, proposed_on_chain=True
        ).select_related("account__user", "acceptance_operation")
    )


def guardian_counts(*, user: User) -> dict[str, int]:
    """Active guardians of the user's account: portal/external ones, and recovery keys."""
    account = smart_account_of(user=user)
    if account is None:
        return {"guardians": 0, "recovery_keys": 0}
    active = Guardian.objects.filter(account=account, status=Guardian.Status.ACTIVE)
    keys = active.filter(kind=Guardian.Kind.RECOVERY_KEY).count()
    return {"guardians": active.count() - keys, "recovery_keys": keys}


def staff_alert_addresses() -> list[str]:
    """Where operator alerts go: active staff with an email address, ADMINS and
    RECOVERY_ALERT_EMAILS."""
    staff = User.objects.filter(is_staff=True, is_active=True).exclude(email="")
    addresses = {*staff.values_list("email", flat=True)}
    addresses.update(email for _, email in settings.ADMINS)
    addresses.update(settings.RECOVERY_ALERT_EMAILS)
    return sorted(addresses)
