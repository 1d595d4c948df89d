from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, SignIn, SmartAccount, User
from passkeys.selectors import passkey_list, passkeys_of

AT_RISK_SINGLE_PASSKEY = "single_passkey"
AT_RISK_NO_SYNCED_PASSKEY = "no_synced_passkey"


def account_resilience(*, user: User) -> dict[str, object]:
    """Is the account one lost device away from lockout?"""
    passkeys = list(passkeys_of(user=user))
    reasons = []
    if len(passkeys) <= 1:
        reasons.append(AT_RISK_SINGLE_PASSKEY)
    if not any(p.backup_eligible for p in passkeys):
        reasons.append(AT_RISK_NO_SYNCED_PASSKEY)
    return {"level": "at_risk" if reasons else "ok", "reasons": reasons}


def smart_account_of(*, user: User) -> SmartAccount | None:
    """The user's smart account on the configured chain, if one was opened."""
    return SmartAccount.objects.filter(user=user, chain_id=settings.CHAIN_ID).first()


def account_overview(*, user: User) -> dict[str, object]:
    """What /account and /account/passkeys show: passkeys, resilience, the smart account."""
    return {
        "passkeys": passkey_list(user=user),
        "resilience": account_resilience(user=user),
        "smart_account": smart_account_of(user=user),
        "explorer_url": settings.CHAIN_EXPLORER_URL.rstrip("/"),
    }


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
