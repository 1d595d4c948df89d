from django.db.models import QuerySet

from accounts.models import User
from passkeys.models import AuthenticatorProvider, Passkey
from passkeys.webauthn import CredentialDescriptor


def passkeys_of(*, user: User) -> QuerySet[Passkey]:
    return Passkey.objects.filter(user=user).order_by("created_at", "id")


def with_providers(passkeys: list[Passkey]) -> list[Passkey]:
    """Attach each passkey's catalog entry (or None) as `.provider`, in one query."""
    aaguids = {p.aaguid for p in passkeys if p.aaguid}
    providers = {p.aaguid: p for p in AuthenticatorProvider.objects.filter(aaguid__in=aaguids)}
    for passkey in passkeys:
        passkey.provider = providers.get(passkey.aaguid) if passkey.aaguid else None
    return passkeys


def passkey_list(*, user: User) -> list[Passkey]:
    return with_providers(list(passkeys_of(user=user)))


def credential_descriptors(*, user: User) -> list[CredentialDescriptor]:
    return [
        CredentialDescriptor(credential_id=bytes(p.credential_id), transports=list(p.transports))
        for p in passkeys_of(user=user)
    ]


def sign_in_candidates(*, username: str) -> tuple[int | None, list[CredentialDescriptor]]:
    """The active user named `username` (any case) and their passkeys, in one query when they
    have passkeys (everyone who signed up does)."""
    rows = list(
        Passkey.objects.filter(user__username__iexact=username, user__is_active=True)
        .order_by("created_at", "id")
        .values_list("user_id", "credential_id", "transports")
    )
    if rows:
        return rows[0][0], [
            CredentialDescriptor(credential_id=bytes(credential_id), transports=list(transports))
            for _, credential_id, transports in rows
        ]
    user_id = (
        User.objects.filter(username__iexact=username, is_active=True)
        .values_list("pk", flat=True)
        .first()
    )
    return user_id, []


def owns_passkey(*, user: User, passkey_id: int) -> bool:
    return Passkey.objects.filter(user=user, pk=passkey_id).exists()
