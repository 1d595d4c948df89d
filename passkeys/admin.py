from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from webauthn.helpers import bytes_to_base64url

from accounts.models import User
from passkeys.models import AuthenticatorProvider, Passkey
from passkeys.services import delete_passkey
from portal.client_info import ClientInfo
from portal.errors import PortalError


@admin.register(Passkey)
class PasskeyAdmin(admin.ModelAdmin[Passkey]):
    """Operators may rename or delete a passkey; its credential material is read-only and the
    public key is not shown. A deletion goes through the same service as the person's own
    (audit, email, removal on chain, never the last passkey, its sign-ins ended); there is no
    bulk deletion."""

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

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_model(self, request: HttpRequest, obj: Passkey) -> None:
        delete_passkey(
            user=obj.user,
            passkey_id=obj.pk,
            client=ClientInfo.from_request(request),
            operator=request.user if isinstance(request.user, User) else None,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for passkey in queryset.select_related("user"):
            self.delete_model(request, passkey)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except PortalError as refusal:
            self.message_user(request, f"{refusal.detail} ({refusal.code})", messages.ERROR)
            return HttpResponseRedirect(reverse("admin:passkeys_passkey_change", args=[object_id]))


@admin.register(AuthenticatorProvider)
class AuthenticatorProviderAdmin(admin.ModelAdmin[AuthenticatorProvider]):
    list_display = ["name", "aaguid", "updated_at"]
    search_fields = ["name", "aaguid"]
    readonly_fields = ["updated_at"]
