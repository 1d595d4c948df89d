"""Pages: the /connect popup a dapp opens, and /account/sessions (session keys and connected
dapps, each with a Disconnect button)."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.permissions import current_user
from portal.client_info import ClientInfo
from portal.errors import NotFound
from portal.validators import valid_dapp_origin
from sessionkeys import connections
from sessionkeys.selectors import sessions_of


@require_GET
def connect_page(request: HttpRequest) -> HttpResponse:
    """The popup: `?origin=` names the dapp that opened it; the page talks only to that origin
    (postMessage both ways) and never inside a frame (X-Frame-Options DENY and CSP
    frame-ancestors 'none', set for every page)."""
    origin = request.GET.get("origin", "")
    if not valid_dapp_origin(origin):
        response = render(request, "sessionkeys/connect_error.html", status=400)
    else:
        response = render(
            request,
            "sessionkeys/connect.html",
            {
                "dapp_origin": origin,
                "chain_id": settings.CHAIN_ID,
                "public_rpc_url": settings.CHAIN_PUBLIC_RPC_URL,
            },
        )
    # The dapp that opened the popup keeps its handle on it (window.opener): the portal's usual
    # same-origin opener policy would cut it.
    response["Cross-Origin-Opener-Policy"] = "unsafe-none"
    response["X-Frame-Options"] = "DENY"
    return response


@login_required
@require_GET
def sessions_page(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    dapps = [
        (connection, connections.allowed(connection))
        for connection in connections.connections_of(user=user)[:200]
    ]
    return render(
        request,
        "sessionkeys/sessions.html",
        {"sessions": sessions_of(user=user), "dapps": dapps},
    )


@login_required
@require_POST
def disconnect_dapp(request: HttpRequest, connection_id: int) -> HttpResponse:
    try:
        connections.disconnect(
            user=current_user(request),
            connection_id=connection_id,
            client=ClientInfo.from_request(request),
        )
    except NotFound as exc:
        raise Http404(exc.detail) from exc
    return redirect("account-sessions")
