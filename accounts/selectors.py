from django.db.models import QuerySet

from accounts.models import AuditEvent, User
from passkeys.selectors import passkeys_of

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


def activity_of(*, user: User) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(user=user).order_by("-created_at", "-id")
