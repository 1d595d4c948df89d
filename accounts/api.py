from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from knox.models import AuthToken
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AuditEvent, SignIn, User
from accounts.permissions import require_reauthentication
from accounts.selectors import account_resilience, activity_of, signins_of
from accounts.services import (
    current_signin_id,
    end_other_signins,
    end_session,
    end_signin,
    revoke_token,
    update_profile,
)
from passkeys.templatetags.passkey_tags import short_user_agent
from portal.client_info import ClientInfo
from portal.fields import StrictCharField
from portal.validators import reject_control_characters


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
        signins = signins_of(user=cast(User, request.user))
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
            user=cast(User, request.user),
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
            user=cast(User, request.user),
            current_id=current_signin_id(request=request),
            client=ClientInfo.from_request(request),
        )
        return Response(self.OutputSerializer({"ended": ended}).data)


class ResilienceOutput(serializers.Serializer[Any]):
    level = serializers.ChoiceField(choices=["ok", "at_risk"])
    reasons = serializers.ListField(child=serializers.CharField())


class MeApi(APIView):
    class OutputSerializer(serializers.ModelSerializer[User]):
        resilience = serializers.SerializerMethodField()

        class Meta:
            model = User
            fields = ["id", "username", "display_name", "email", "date_joined", "resilience"]

        @extend_schema_field(ResilienceOutput)
        def get_resilience(self, user: User) -> dict[str, object]:
            return account_resilience(user=user)

    class InputSerializer(serializers.Serializer[Any]):
        display_name = StrictCharField(
            max_length=64, required=False, allow_blank=True, validators=[reject_control_characters]
        )
        email = serializers.EmailField(required=False, allow_blank=True, max_length=254)

    @extend_schema(responses={200: OutputSerializer}, operation_id="me")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(cast(User, request.user)).data)

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="me_update"
    )
    def patch(self, request: Request) -> Response:
        """Change the display name, or (with a fresh passkey confirmation) the email address."""
        user = cast(User, request.user)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        email = data.validated_data.get("email")
        if email is not None and email.lower() != user.email.lower():
            require_reauthentication(request)
        user = update_profile(
            user=user,
            client=ClientInfo.from_request(request),
            display_name=data.validated_data.get("display_name"),
            email=email,
        )
        return Response(self.OutputSerializer(user).data)


class ActivityPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ActivityApi(ListAPIView):  # type: ignore[type-arg]
    """The signed-in user's own security events, newest first."""

    pagination_class = ActivityPagination

    class OutputSerializer(serializers.ModelSerializer[AuditEvent]):
        class Meta:
            model = AuditEvent
            fields = ["id", "kind", "created_at", "ip_address", "user_agent", "details"]

    serializer_class = OutputSerializer

    def get_queryset(self) -> QuerySet[AuditEvent]:
        return activity_of(user=cast(User, self.request.user))
