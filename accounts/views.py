from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import current_user
from accounts.selectors import activity_of
from accounts.services import end_session


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    return redirect("account" if request.user.is_authenticated else "login")


ACTIVITY_PAGE_SIZE = 50


@login_required
@require_GET
def activity_page(request: HttpRequest) -> HttpResponse:
    events = Paginator(activity_of(user=current_user(request)), ACTIVITY_PAGE_SIZE)
    return render(
        request, "accounts/activity.html", {"page": events.get_page(request.GET.get("page"))}
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    end_session(request=request, via="web")
    return redirect("login")
