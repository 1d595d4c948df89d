from django.conf import settings
from django.http import Http404, HttpRequest, JsonResponse
from django.views.decorators.http import require_GET


@require_GET
def webauthn_related_origins(request: HttpRequest) -> JsonResponse:
    """`/.well-known/webauthn`: the other origins allowed to use this RP ID's passkeys
    (WebAuthn Related Origin Requests)."""
    if not settings.PORTAL_RELATED_ORIGINS:
        raise Http404
    response = JsonResponse({"origins": settings.PORTAL_RELATED_ORIGINS})
    response["Cache-Control"] = "public, max-age=3600"
    return response
