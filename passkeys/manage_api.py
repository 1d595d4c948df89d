"""The signed-in user's passkeys (`/api/v1/passkeys`) and re-authentication (`auth/reauth`)."""

from typing import Any, cast

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import ReauthenticatedRecently, require_reauthentication
from accounts.services import forget_ended_session, mark_reauthenticated
from passkeys import services
from passkeys.api import CeremonyOutput, ceremony_response
from passkeys.selectors import owns_passkey, passkey_list, with_providers
from passkeys.serializers import CeremonyIdField, CredentialField, PasskeyNameField, PasskeyOutput
from portal.client_info import ClientInfo
from portal.errors import NotFound
from portal.throttling import AuthRateThrottle

HINTS = ["client-device", "security-key", "hybrid"]


def current_user(request: Request) -> User:
    return cast(User, request.user)


class ReauthOptionsApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    @extend_schema(request=None, responses={200: CeremonyOutput}, operation_id="reauth_options")
    def post(self, request: Request) -> Response:
        return ceremony_response(services.begin_reauthentication(user=current_user(request)))


class ReauthVerifyApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()

    class OutputSerializer(serializers.Serializer[Any]):
        reauthenticated_until = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="reauth_verify"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passkey = services.complete_reauthentication(
            user=current_user(request),
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            client=ClientInfo.from_request(request),
        )
        until = mark_reauthenticated(request=request, passkey=passkey)
        return Response(self.OutputSerializer({"reauthenticated_until": until}).data)


class PasskeyListApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: PasskeyOutput(many=True)}, operation_id="passkeys_list")
    def get(self, request: Request) -> Response:
        return Response(PasskeyOutput(passkey_list(user=current_user(request)), many=True).data)


class PasskeyDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer[Any]):
        name = PasskeyNameField()

    def _ensure_own(self, request: Request, passkey_id: int) -> None:
        if not owns_passkey(user=current_user(request), passkey_id=passkey_id):
            raise NotFound("passkey_not_found", "No such passkey.")

    @extend_schema(responses={200: PasskeyOutput}, operation_id="passkeys_get")
    def get(self, request: Request, passkey_id: int) -> Response:
        self._ensure_own(request, passkey_id)
        passkey = next(p for p in passkey_list(user=current_user(request)) if p.pk == passkey_id)
        return Response(PasskeyOutput(passkey).data)

    @extend_schema(
        request=InputSerializer, responses={200: PasskeyOutput}, operation_id="passkeys_rename"
    )
    def patch(self, request: Request, passkey_id: int) -> Response:
        self._ensure_own(request, passkey_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passkey = services.rename_passkey(
            user=current_user(request),
            passkey_id=passkey_id,
            name=data.validated_data["name"],
            client=ClientInfo.from_request(request),
        )
        return Response(PasskeyOutput(with_providers([passkey])[0]).data)

    @extend_schema(request=None, responses={204: None}, operation_id="passkeys_delete")
    def delete(self, request: Request, passkey_id: int) -> Response:
        self._ensure_own(request, passkey_id)
        require_reauthentication(request)
        services.delete_passkey(
            user=current_user(request),
            passkey_id=passkey_id,
            client=ClientInfo.from_request(request),
        )
        forget_ended_session(request=request)  # when this browser signed in with it
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasskeyRegisterOptionsApi(APIView):
    permission_classes = [IsAuthenticated, ReauthenticatedRecently]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        hints = serializers.ListField(
            child=serializers.ChoiceField(choices=HINTS), required=False, max_length=3
        )

    @extend_schema(
        request=InputSerializer,
        responses={200: CeremonyOutput},
        operation_id="passkeys_register_options",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return ceremony_response(
            services.begin_passkey_registration(
                user=current_user(request), hints=data.validated_data.get("hints")
            )
        )


class PasskeyRegisterVerifyApi(APIView):
    permission_classes = [IsAuthenticated, ReauthenticatedRecently]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()
        name = PasskeyNameField(required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses={201: PasskeyOutput},
        operation_id="passkeys_register_verify",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        passkey = services.complete_passkey_registration(
            user=current_user(request),
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            name=data.validated_data.get("name"),
            client=ClientInfo.from_request(request),
        )
        return Response(
            PasskeyOutput(with_providers([passkey])[0]).data, status=status.HTTP_201_CREATED
        )
