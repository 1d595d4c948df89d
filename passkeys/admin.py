from django.contrib import admin
from django.http import HttpRequest
from webauthn.helpers import bytes_to_base64url

from passkeys.models import AuthenticatorProvider, Passkey


@admin.register(Passkey)
class PasskeyAdmin(admin.ModelAdmin[Passkey]):
    """Operators may rename or delete a passkey; its credential material is read-only and the
    public key is not shown."""

    list_display = ["name", "user", "device_type", "backed_up", "created_at", "last_used_at"]
    list_filter = ["backup_eligible", "backed_up"]
    search_fields = ["name", "user__username"]
    list_select_related = ["user"]
    fields = [
        "user",
        "name",
        "credential_id_base64url",
        "aaguid",
        "sign_count",
        "transports",
        "backup_eligible",
        "backed_up",
        "created_at",
        "last_used_at",
    ]
    readonly_fields = [
        "user",
        "credential_id_base64url",
        "aaguid",
        "sign_count",
        "transports",
        "backup_eligible",
        "backed_up",
        "created_at",
        "last_used_at",
    ]

    @admin.display(description="credential id")
    def credential_id_base64url(self, passkey: Passkey) -> str:
        return bytes_to_base64url(bytes(passkey.credential_id))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuthenticatorProvider)
class AuthenticatorProviderAdmin(admin.ModelAdmin[AuthenticatorProvider]):
    list_display = ["name", "aaguid", "updated_at"]
    search_fields = ["name", "aaguid"]
    readonly_fields = ["updated_at"]
