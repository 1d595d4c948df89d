from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AuditEvent, User
from accounts.permissions import require_reauthentication
from accounts.selectors import account_resilience, activity_of
from accounts.services import revoke_token, update_profile
from portal.client_info import ClientInfo
from portal.fields import StrictCharField
from portal.validators import reject_control_characters


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None}, operation_id="logout")
    def post(self, request: Request) -> Response:
        revoke_token(token=request.auth, client=ClientInfo.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
