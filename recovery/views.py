"""Pages: /account/recovery (guardians, accounts you guard, recoveries to approve), /recover
(start a recovery on a new device) and /recover/<id> (its countdown)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import current_user
from accounts.selectors import smart_account_of
from passkeys.selectors import account_resilience
from recovery.api import accept_call
from recovery.codes import current_code
from recovery.selectors import (
    executor_installed,
    guardians_of,
    guarding,
    request_by_public_id,
    requests_for_guardian,
)


@login_required
@require_GET
def recovery_page(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    account = smart_account_of(user=user)
    guardians = guardians_of(user=user)
    calls = {g.pk: accept_call(g) for g in guardians if g.kind == "external"}
    context: dict[str, Any] = {
        "smart_account": account,
        "recovery_enabled": account is not None and executor_installed(account=account),
        "guardians": guardians,
        "recovery_code": current_code(account=account),
        "accept_calls": calls,
        "guarding": guarding(user=user),
        "to_approve": requests_for_guardian(user=user),
        "resilience": account_resilience(user=user),
        "explorer_url": settings.CHAIN_EXPLORER_URL.rstrip("/"),
    }
    return render(request, "recovery/account_recovery.html", context)


@require_GET
def recover_page(request: HttpRequest) -> HttpResponse:
    return render(request, "recovery/recover.html")


@require_GET
def recover_status_page(request: HttpRequest, public_id: Any) -> HttpResponse:
    recovery = request_by_public_id(public_id)
    if recovery is None:
        raise Http404
    return render(request, "recovery/recover_status.html", {"recovery": recovery})
