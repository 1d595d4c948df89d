from django.contrib import admin

from domains.models import Alert, Check, Incident, IncidentLogEntry, WatchedDomain


@admin.register(WatchedDomain)
class WatchedDomainAdmin(admin.ModelAdmin[WatchedDomain]):
    list_display = ["name", "source", "active", "created_at"]


@admin.register(Check)
class CheckAdmin(admin.ModelAdmin[Check]):
    list_display = ["domain", "signal", "state", "last_run_at", "summary"]
    list_filter = ["signal", "state"]
    readonly_fields = ["domain", "signal", "state", "summary", "last_run_at", "last_error"]


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin[Alert]):
    """Read-only: alerts open and close with what the checks see."""

    list_display = ["kind", "severity", "domain", "status", "first_seen", "last_seen"]
    list_filter = ["status", "severity", "kind"]

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


class LogInline(admin.TabularInline[IncidentLogEntry, Incident]):
    model = IncidentLogEntry
    can_delete = False
    extra = 0
    readonly_fields = ["at", "actor", "action", "from_status", "to_status", "note"]

    def has_add_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin[Incident]):
    """Read-only: the workflow is in the console (/console/incidents/<id>)."""

    list_display = ["title", "status", "severity", "opened_at"]
    inlines = [LogInline]

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False
