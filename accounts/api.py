"""The accounts API: signing out, the person's activity log, their chain operations."""

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import AuditEvent
from accounts.permissions import current_user
from accounts.selectors import activity_of, operation_of, operations_of
from accounts.serializers import OperationOutput
from accounts.services import revoke_token
from chain.models import ChainOperation
from portal.client_info import ClientInfo


class LogoutApi(APIView):
    @extend_schema(request=None, responses={204: None}, operation_id="logout")
    def post(self, request: Request) -> Response:
        revoke_token(token=request.auth, client=ClientInfo.from_request(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


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
