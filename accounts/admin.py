from typing import Any

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from accounts.models import AuditEvent, User


def _sign_in_with_a_passkey(request: HttpRequest, extra_context: Any = None) -> HttpResponse:
    """Operators sign in like everyone else: with a passkey on /login. There are no passwords."""
    return redirect_to_login(request.GET.get("next", reverse("admin:index")), reverse("login"))


admin.site.login = _sign_in_with_a_passkey  # type: ignore[method-assign]
admin.site.site_header = "Passkey Portal operations"


@admin.register(User)
class UserAdmin(admin.ModelAdmin[User]):
    list_display = ["username", "display_name", "email", "is_active", "is_staff", "date_joined"]
    list_filter = ["is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "display_name", "email"]
    ordering = ["username"]
    readonly_fields = ["username", "date_joined", "last_login"]
    fields = [
        "username",
        "display_name",
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "date_joined",
        "last_login",
    ]
    filter_horizontal = ["groups", "user_permissions"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people sign up with a passkey; an operator cannot create one for them


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    list_display = ["created_at", "kind", "user", "ip_address"]
    list_filter = ["kind", ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["user__username", "ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
