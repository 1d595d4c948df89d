from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from chain.models import ChainOperation, Deployment, RelayerAccount


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    list_display = ("chain_id", "name", "address", "updated_at")
    list_filter = ("chain_id",)
    readonly_fields = ("chain_id", "name", "address", "code_hash", "updated_at")


class ReadOnlyAdmin(admin.ModelAdmin[Any]):
    """Shown, never edited: these rows change only through the pipeline's services."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ChainOperation)
class ChainOperationAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "label",
        "status",
        "account",
        "submitted_via",
        "relayer_nonce",
        "bundle_index",
        "attempts",
        "created_at",
        "updated_at",
    )
    list_filter = ("status", "kind", "chain_id")
    search_fields = ("idempotency_key", "user_op_hash", "tx_hash", "account")
    date_hierarchy = "created_at"
    exclude = ("tx_data", "raw_transaction")


@admin.register(RelayerAccount)
class RelayerAccountAdmin(ReadOnlyAdmin):
    list_display = ("chain_id", "address", "next_nonce")
