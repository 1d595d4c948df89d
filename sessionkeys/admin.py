"""Admin: sessions by account and by dapp origin (filters by status and origin), the revocation
an operator can ask for, the presets operators offer, the relay's operations, and the dapps
people connected with the calls they asked for (read-only)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.errors import PortalError
from sessionkeys.models import CallBundle, DappConnection, RelayedOperation, Session, SessionPreset
from sessionkeys.services import REVOCABLE, revoke_sessions


class ReadOnly(admin.ModelAdmin[Any]):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Session)
class SessionAdmin(ReadOnly):
    list_display = ("id", "account", "origin", "status", "signer", "expires_at", "created_at")
    list_filter = ("status", "origin", "chain_id")
    search_fields = (
        "account__address",
        "account__user__username",
        "origin",
        "signer",
        "session_hash",
    )
    date_hierarchy = "created_at"
    list_select_related = ("account",)
    actions = ["ask_owner_to_revoke"]
    readonly_fields = [field.name for field in Session._meta.fields]

    @admin.action(description="Ask the owners to revoke the selected sessions (passkey-approved)")
    def ask_owner_to_revoke(self, request: HttpRequest, queryset: QuerySet[Session]) -> None:
        """The account's owner signs revocations: this creates the revokeKeys operation that
        waits for their passkey on their account page."""
        owners: dict[int, list[Session]] = {}
        for session in queryset.filter(status__in=REVOCABLE).select_related("account__user"):
            owners.setdefault(session.account.user_id, []).append(session)
        for sessions in owners.values():
            try:
                operation = revoke_sessions(
                    user=sessions[0].account.user,
                    session_ids=[s.pk for s in sessions],
                    client=None,
                )
            except PortalError as exc:
                self.message_user(request, f"{sessions[0].account}: {exc.detail}", messages.ERROR)
                continue
            self.message_user(
                request,
                f"Revocation #{operation.pk} waits for {sessions[0].account.user}'s passkey.",
            )


@admin.register(SessionPreset)
class SessionPresetAdmin(admin.ModelAdmin[SessionPreset]):
    list_display = (
        "name",
        "origin",
        "native_per_period_wei",
        "period_seconds",
        "duration_seconds",
        "fee_limit_wei",
        "enabled",
    )
    list_filter = ("enabled",)


@admin.register(RelayedOperation)
class RelayedOperationAdmin(ReadOnly):
    list_display = ("user_op_hash", "session", "sponsored", "max_cost", "operation", "created_at")
    search_fields = ("user_op_hash", "session__origin", "session__account__address")


@admin.register(DappConnection)
class DappConnectionAdmin(ReadOnly):
    list_display = ("id", "origin", "user", "account", "connected_at", "last_used_at")
    list_filter = ("origin",)
    search_fields = ("origin", "user__username", "account__address")
    list_select_related = ("user", "account")
    readonly_fields = [field.name for field in DappConnection._meta.fields]


@admin.register(CallBundle)
class CallBundleAdmin(ReadOnly):
    list_display = ("bundle_id", "origin", "account", "operation", "created_at")
    list_filter = ("origin",)
    search_fields = ("bundle_id", "origin", "account__address")
    list_select_related = ("account", "operation")
    readonly_fields = [field.name for field in CallBundle._meta.fields]
