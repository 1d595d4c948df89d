"""Pages: the /connect popup a dapp opens to ask for a session key, and /account/sessions."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts.permissions import current_user
from sessionkeys.api import valid_origin
from sessionkeys.selectors import sessions_of


@require_GET
def connect_page(request: HttpRequest) -> HttpResponse:
    """The popup: `?origin=` names the dapp that opened it; the page talks only to that origin
    (postMessage both ways) and never inside a frame (X-Frame-Options DENY and CSP
    frame-ancestors 'none', set for every page)."""
    origin = request.GET.get("origin", "")
    if not valid_origin(origin) or origin in settings.PORTAL_ORIGINS:
        response = render(request, "sessionkeys/connect_error.html", status=400)
    else:
        response = render(
            request,
            "sessionkeys/connect.html",
            {"dapp_origin": origin, "chain_id": settings.CHAIN_ID},
        )
    # The dapp that opened the popup keeps its handle on it (window.opener): the portal's usual
    # same-origin opener policy would cut it.
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    response["X-Frame-Options"] = "DENY"
    return response


@login_required
@require_GET
def sessions_page(request: HttpRequest) -> HttpResponse:
    sessions = sessions_of(user=current_user(request))
    return render(request, "sessionkeys/sessions.html", {"sessions": sessions})
