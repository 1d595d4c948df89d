from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, SignIn, SmartAccount, User
from chain.models import ChainOperation
from portal.errors import NotFound


def smart_account_of(*, user: User) -> SmartAccount | None:
    """The user's smart account on the configured chain, if one was opened."""
    return SmartAccount.objects.filter(user=user, chain_id=settings.CHAIN_ID).first()


def operations_of(*, user: User) -> QuerySet[ChainOperation]:
    """The chain operations of the user's smart accounts, newest first."""
    mine = Q(pk__in=[])
    for chain_id, address in SmartAccount.objects.filter(user=user).values_list(
        "chain_id", "address"
    ):
        mine |= Q(chain_id=chain_id, account=address)
    return ChainOperation.objects.filter(mine).order_by("-created_at", "-id")


def operation_of(*, user: User, operation_id: int) -> ChainOperation:
    """One of the user's operations; 404 `operation_not_found` for anyone else's."""
    operation = operations_of(user=user).filter(pk=operation_id).first()
    if operation is None:
        raise NotFound("operation_not_found", "No such operation.")
    return operation


def sponsored_operations_today(*, user: User) -> int:
    """User operations (which the portal's paymaster pays for) asked for by the user in the last
    24 hours, those that expired unsigned left out."""
    return (
        operations_of(user=user)
        .filter(user_operation__isnull=False, created_at__gte=timezone.now() - timedelta(days=1))
        .exclude(status=ChainOperation.Status.EXPIRED)
        .count()
    )


def signins_of(*, user: User) -> QuerySet[SignIn]:
    """Where the user is signed in (browsers and API tokens that have not expired), most recently
    seen first, with the passkey that holds each."""
    return (
        SignIn.objects.filter(user=user, expires_at__gt=timezone.now())
        .select_related("passkey")
        .order_by("-last_seen_at", "-id")
    )


def activity_of(*, user: User) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(user=user).order_by("-created_at", "-id")
