"""Sign-up and sign-in over the API: `/api/v1/auth/{register,login}/{options,verify}`."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.serializers import UsernameField, UserSummary
from accounts.services import issue_token
from passkeys import services
from passkeys.selectors import with_providers
from passkeys.serializers import CeremonyIdField, CredentialField, PasskeyOutput
from portal.client_info import ClientInfo
from portal.db import one_transaction
from portal.fields import StrictCharField
from portal.throttling import AuthRateThrottle
from portal.validators import reject_control_characters


class CeremonyOutput(serializers.Serializer[Any]):
    ceremony_id = CeremonyIdField()
    publicKey = serializers.DictField()


def ceremony_response(result: services.CeremonyOptions) -> Response:
    return Response({"ceremony_id": result.ceremony.ceremony_id, "publicKey": result.public_key})


class CeremonyAPIView(APIView):
    """No authentication, no CSRF (no cookies involved), rate-limited per client address."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


class RegisterOptionsApi(CeremonyAPIView):
    class InputSerializer(serializers.Serializer[Any]):
        username = UsernameField()
        display_name = StrictCharField(
            max_length=64,
            required=False,
            allow_blank=True,
            default="",
            validators=[reject_control_characters],
        )

    @extend_schema(
        request=InputSerializer, responses={200: CeremonyOutput}, operation_id="register_options"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return ceremony_response(
            services.begin_registration(
                username=data.validated_data["username"],
                display_name=data.validated_data["display_name"].strip(),
            )
        )


class RegisterVerifyApi(CeremonyAPIView):
    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()
        passkey_name = StrictCharField(
            max_length=64, required=False, allow_blank=True, validators=[reject_control_characters]
        )

    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()
        user = UserSummary()
        passkey = PasskeyOutput()

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer}, operation_id="register_verify"
    )
    @one_transaction
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client = ClientInfo.from_request(request)
        user, passkey = services.complete_registration(
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            passkey_name=data.validated_data.get("passkey_name"),
            client=client,
        )
        token = issue_token(user=user, passkey=passkey, client=client)
        output = self.OutputSerializer(
            {"token": token, "user": user, "passkey": with_providers([passkey])[0]}
        )
        return Response(output.data, status=status.HTTP_201_CREATED)


class LoginOptionsApi(CeremonyAPIView):
    class InputSerializer(serializers.Serializer[Any]):
        username = StrictCharField(max_length=32, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer, responses={200: CeremonyOutput}, operation_id="login_options"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data.get("username", "").strip()
        return ceremony_response(services.begin_authentication(username=username or None))


class LoginVerifyApi(CeremonyAPIView):
    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()

    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()
        user = UserSummary()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="login_verify"
    )
    @one_transaction
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        client = ClientInfo.from_request(request)
        user, passkey = services.complete_authentication(
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            client=client,
        )
        token = issue_token(user=user, passkey=passkey, client=client)
        return Response(self.OutputSerializer({"token": token, "user": user}).data)
