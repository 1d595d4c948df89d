"""Read-only admin: operators see guardians and recoveries with their countdowns; nobody can
change, skip or shorten anything here (the delay is the contract's)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone

from recovery.models import Guardian, RecoveryRequest


class ReadOnly(admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Guardian)
class GuardianAdmin(ReadOnly):
    list_display = ["account", "address", "kind", "guardian_user", "status", "proposed_on_chain"]
    list_filter = ["status", "kind"]
    search_fields = ["address", "account__address", "account__user__username"]
    list_select_related = ["account", "guardian_user"]


@admin.register(RecoveryRequest)
class RecoveryRequestAdmin(ReadOnly):
    list_display = ["public_id", "user", "status", "created_at", "initiated_at", "countdown"]
    list_filter = ["status"]
    search_fields = ["user__username", "account__address", "public_id"]
    list_select_related = ["user"]
    exclude = ["code_hash", "public_key", "credential_id", "recovery_data"]

    @admin.display(description="Completes / expires")
    def countdown(self, obj: RecoveryRequest) -> str:
        if not obj.is_open:
            return obj.get_status_display()
        target = obj.completes_at or obj.expires_at
        left = target - timezone.now()
        if left.total_seconds() <= 0:
            return f"due since {target:%Y-%m-%d %H:%M} UTC"
        hours, rest = divmod(int(left.total_seconds()), 3600)
        what = "completes" if obj.completes_at else "expires unless approved"
        return f"{what} in {hours} h {rest // 60} min ({target:%Y-%m-%d %H:%M} UTC)"
