from django.db.models import QuerySet

from accounts.models import User
from passkeys.models import Passkey
from passkeys.webauthn import CredentialDescriptor


def passkeys_of(*, user: User) -> QuerySet[Passkey]:
    return Passkey.objects.filter(user=user).order_by("created_at", "id")


def credential_descriptors(*, user: User) -> list[CredentialDescriptor]:
    return [
        CredentialDescriptor(credential_id=bytes(p.credential_id), transports=list(p.transports))
        for p in passkeys_of(user=user)
    ]
