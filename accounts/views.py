from typing import cast

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from accounts.selectors import account_overview, activity_of, signins_of
from accounts.services import current_signin_id, end_session


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("account" if request.user.is_authenticated else "login")


@login_required
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    context = {
        **account_overview(user=user),
        "signins": signins_of(user=user),
        "current_signin_id": current_signin_id(request=request),
    }
    return render(request, "accounts/account.html", context)


ACTIVITY_PAGE_SIZE = 50


@login_required
@require_GET
def activity_page(request: HttpRequest) -> HttpResponse:
    events = Paginator(activity_of(user=cast(User, request.user)), ACTIVITY_PAGE_SIZE)
    return render(
        request, "accounts/activity.html", {"page": events.get_page(request.GET.get("page"))}
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    end_session(request=request, via="web")
    return redirect("login")
