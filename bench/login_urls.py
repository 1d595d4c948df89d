"""URLs for bench/login.py's gunicorn: the portal as it is, plus one bare view.

`POST /bench/bare-verify` only runs py_webauthn's verify_authentication_response on the body, for
a key and challenge fixed by the benchmark (BENCH_PUBLIC_KEY, BENCH_CHALLENGE): the floor that a
sign-in cannot go below, measured through the same server, middleware and database settings.
"""

import json
import os

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from webauthn import verify_authentication_response

_PUBLIC_KEY = bytes.fromhex(os.environ.get("BENCH_PUBLIC_KEY", ""))
_CHALLENGE = bytes.fromhex(os.environ.get("BENCH_CHALLENGE", ""))


@csrf_exempt
def bare_verify(request: HttpRequest) -> JsonResponse:
    verified = verify_authentication_response(
        credential=json.loads(request.body)["credential"],
        expected_challenge=_CHALLENGE,
        expected_rp_id=os.environ.get("PORTAL_RP_ID", "localhost"),
        expected_origin=os.environ["PORTAL_ORIGINS"].split(",")[0],
        credential_public_key=_PUBLIC_KEY,
        credential_current_sign_count=0,
        require_user_verification=True,
    )
    return JsonResponse({"sign_count": verified.new_sign_count})


urlpatterns = [
    path("bench/bare-verify", bare_verify),
    path("", include("portal.urls")),
]
