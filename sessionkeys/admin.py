"""Admin: sessions by account and by dapp origin (filters by status and origin), the revocation
an operator can ask for, the presets operators offer, the relay's operations, and the dapps
people connected with the calls they asked for (read-only)."""

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.client_info import ClientInfo
from portal.errors import PortalError
from sessionkeys.models import CallBundle, DappConnection, RelayedOperation, Session, SessionPreset
from sessionkeys.services import REVOCABLE, revoke_sessions, suspend_sessions


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
    actions = ["suspend_and_ask_owner_to_revoke"]
    readonly_fields = [field.name for field in Session._meta.fields]

    @admin.action(
        description="Suspend the selected sessions in the relay and ask their owners to revoke "
        "them (passkey-approved)"
    )
    def suspend_and_ask_owner_to_revoke(
        self, request: HttpRequest, queryset: QuerySet[Session]
    ) -> None:
        """Only the account's owner can revoke a key on chain: the portal stops sponsoring the
        sessions at once and creates the revokeKeys operation that waits for the owner's passkey
        on their sessions page."""
        chosen = list(queryset.filter(status__in=REVOCABLE).select_related("account__user"))
        suspend_sessions(
            sessions=chosen,
            operator=request.user.get_username(),
            client=ClientInfo.from_request(request),
        )
        owners: dict[int, list[Session]] = {}
        for session in chosen:
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
