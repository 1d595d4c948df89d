from typing import cast

from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import AuditEvent, User
from accounts.services import record_event
from passkeys.selectors import passkeys_of
from portal.client_info import ClientInfo


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("account" if request.user.is_authenticated else "login")


@login_required
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    return render(request, "accounts/account.html", {"passkeys": passkeys_of(user=user)})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        record_event(
            kind=AuditEvent.Kind.LOGOUT,
            user=request.user,
            client=ClientInfo.from_request(request),
            via="web",
        )
    logout(request)
    return redirect("login")
