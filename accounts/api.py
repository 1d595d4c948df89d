"""The accounts API: signing out, the person's activity log, their chain operations."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AuditEvent, SignIn
from accounts.permissions import current_user, require_reauthentication
from accounts.selectors import activity_of, operation_of, operations_of, signins_of
from accounts.serializers import OperationOutput
from accounts.services import (
    current_signin_id,
    end_other_signins,
    end_session,
    end_signin,
    revoke_token,
)
from accounts.templatetags.audit_tags import short_user_agent
from chain.models import ChainOperation
from portal.client_info import ClientInfo


def sign_out(request: Request) -> None:
    """End this request's own sign-in: its token, or its browser session."""
    if isinstance(request.auth, AuthToken):
        revoke_token(token=request.auth, client=ClientInfo.from_request(request))
    else:
        end_session(request=request, via="api")


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None}, operation_id="logout")
    def post(self, request: Request) -> Response:
        sign_out(request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignInPasskeyOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SignInOutput(serializers.ModelSerializer[SignIn]):
    """A place where the person is signed in; `current` is the one making this request."""

    device = serializers.SerializerMethodField()
    passkey = SignInPasskeyOutput(allow_null=True, read_only=True)
    current = serializers.SerializerMethodField()

    class Meta:
        model = SignIn
        fields = [
            "id",
            "kind",
            "current",
            "device",
            "user_agent",
            "ip_address",
            "passkey",
            "created_at",
            "last_seen_at",
            "expires_at",
        ]

    def get_device(self, signin: SignIn) -> str:
        return short_user_agent(signin.user_agent)

    def get_current(self, signin: SignIn) -> bool:
        return bool(signin.pk == self.context.get("current_id"))


class SignInListApi(APIView):
    """Where the signed-in user is signed in: browsers and API tokens."""

    @extend_schema(responses={200: SignInOutput(many=True)}, operation_id="signins_list")
    def get(self, request: Request) -> Response:
        signins = signins_of(user=current_user(request))
        context = {"current_id": current_signin_id(request=request)}
        return Response(SignInOutput(signins, many=True, context=context).data)


class SignInDetailApi(APIView):
    @extend_schema(request=None, responses={204: None}, operation_id="signins_end")
    def delete(self, request: Request, signin_id: int) -> Response:
        """Sign out there. Signing out another browser or token needs sudo mode; this one's is
        the same as logout."""
        if signin_id == current_signin_id(request=request):
            sign_out(request)
            return Response(status=status.HTTP_204_NO_CONTENT)
        require_reauthentication(request)
        end_signin(
            user=current_user(request),
            signin_id=signin_id,
            client=ClientInfo.from_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class SignOutOthersApi(APIView):
    class OutputSerializer(serializers.Serializer[Any]):
        ended = serializers.IntegerField()

    @extend_schema(
        request=None, responses={200: OutputSerializer}, operation_id="signins_end_others"
    )
    def post(self, request: Request) -> Response:
        """Sign out everywhere but here (needs sudo mode)."""
        require_reauthentication(request)
        ended = end_other_signins(
            user=current_user(request),
            current_id=current_signin_id(request=request),
            client=ClientInfo.from_request(request),
        )
        return Response(self.OutputSerializer({"ended": ended}).data)


class Pagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ActivityApi(ListAPIView):  # type: ignore[type-arg]
    """The signed-in user's own security events, newest first."""

    pagination_class = Pagination

    class OutputSerializer(serializers.ModelSerializer[AuditEvent]):
        class Meta:
            model = AuditEvent
            fields = ["id", "kind", "created_at", "ip_address", "user_agent", "details"]

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return activity_of(user=current_user(self.request))


class OperationListApi(ListAPIView):  # type: ignore[type-arg]
    """The signed-in user's chain operations, newest first."""

    permission_classes = [IsAuthenticated]
    pagination_class = Pagination
    serializer_class = OperationOutput

    def get_queryset(self) -> QuerySet[ChainOperation]:
        return operations_of(user=current_user(self.request))

    @extend_schema(operation_id="operations_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OperationDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OperationOutput}, operation_id="operations_get")
    def get(self, request: Request, operation_id: int) -> Response:
        operation = operation_of(user=current_user(request), operation_id=operation_id)
        return Response(OperationOutput(operation).data)
