"""Sign-up and sign-in pages, and the JSON endpoints their scripts post the credential to.

The options come from the API (`/api/v1/auth/*/options`); the verify endpoints here run the same
services as the API's, then start a Django session instead of issuing a token.
"""

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import User
from accounts.permissions import current_user
from accounts.selectors import signins_of
from accounts.services import current_signin_id, start_session
from passkeys import services
from passkeys.models import Passkey
from passkeys.selectors import account_overview
from passkeys.serializers import CeremonyIdField, CredentialField
from portal.client_info import ClientInfo
from portal.csrf import CsrfProtected
from portal.db import one_transaction
from portal.fields import StrictCharField
from portal.throttling import CeremonyVerifyAPIView
from portal.validators import reject_control_characters


@require_GET
def signup_page(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("account")
    return render(request, "passkeys/signup.html")


@require_GET
def login_page(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("account")
    return render(request, "passkeys/login.html")


@login_required
@require_GET
def account_page(request: HttpRequest) -> HttpResponse:
    user = current_user(request)
    context = {
        **account_overview(user=user),
        "signins": signins_of(user=user),
        "current_signin_id": current_signin_id(request=request),
    }
    return render(request, "accounts/account.html", context)


@login_required
@require_GET
def passkeys_page(request: HttpRequest) -> HttpResponse:
    return render(request, "passkeys/manage.html", account_overview(user=current_user(request)))


class PageVerifyView(CeremonyVerifyAPIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny, CsrfProtected]
    schema = None

    def start_session(
        self, request: Request, user: User, passkey: Passkey, next_url: str = ""
    ) -> Response:
        start_session(request=request._request, user=user, passkey=passkey)
        safe = url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
        return Response({"redirect": next_url if next_url and safe else reverse("account")})


class SignupVerifyView(PageVerifyView):
    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()
        next = StrictCharField(max_length=512, required=False, allow_blank=True)
        passkey_name = StrictCharField(
            max_length=64, required=False, allow_blank=True, validators=[reject_control_characters]
        )

    @one_transaction
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, passkey = services.complete_registration(
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            passkey_name=data.validated_data.get("passkey_name"),
            client=ClientInfo.from_request(request),
        )
        return self.start_session(request, user, passkey, data.validated_data.get("next", ""))


class LoginVerifyView(PageVerifyView):
    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()
        next = StrictCharField(max_length=512, required=False, allow_blank=True)

    @one_transaction
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user, passkey = services.complete_authentication(
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            client=ClientInfo.from_request(request),
        )
        return self.start_session(request, user, passkey, data.validated_data.get("next", ""))
