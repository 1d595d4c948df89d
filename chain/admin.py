from django.contrib import admin

from chain.models import Deployment


@admin.register(Deployment)
class DeploymentAdmin(admin.ModelAdmin[Deployment]):
    list_display = ("chain_id", "name", "address", "updated_at")
    list_filter = ("chain_id",)
    readonly_fields = ("chain_id", "name", "address", "code_hash", "updated_at")
