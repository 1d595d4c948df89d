"""The signed-in user's chain operations (`/api/v1/operations`): list, detail, approve."""

from typing import Any, cast

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.smart_accounts import retry_passkey_operation
from chain import pipeline
from chain.models import ChainOperation
from passkeys.serializers import CredentialField
from portal.client_info import ClientInfo
from portal.throttling import AuthRateThrottle


def current_user(request: Request) -> User:
    return cast(User, request.user)


class OperationOutput(serializers.ModelSerializer[ChainOperation]):
    """An operation as the API shows it: where it is, its hashes, and why it failed."""

    account = serializers.SerializerMethodField()
    passkey_id = serializers.SerializerMethodField()
    error = serializers.CharField(source="last_error", read_only=True)

    class Meta:
        model = ChainOperation
        fields = [
            "id",
            "kind",
            "status",
            "account",
            "passkey_id",
            "user_op_hash",
            "tx_hash",
            "block_number",
            "revert_reason",
            "error",
            "created_at",
            "updated_at",
            "signed_at",
            "submitted_at",
            "included_at",
            "confirmed_at",
            "expires_at",
        ]

    def get_account(self, operation: ChainOperation) -> str | None:
        return operation.account.address if operation.account is not None else None

    def get_passkey_id(self, operation: ChainOperation) -> int | None:
        """The passkey an add_passkey / remove_passkey operation is about."""
        passkey_id = operation.details.get("passkey_id")
        return int(passkey_id) if passkey_id is not None else None


class OperationPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class OperationListApi(ListAPIView):  # type: ignore[type-arg]
    """The signed-in user's chain operations, newest first."""

    permission_classes = [IsAuthenticated]
    pagination_class = OperationPagination
    serializer_class = OperationOutput

    def get_queryset(self) -> QuerySet[ChainOperation]:
        return pipeline.operations_of(user=current_user(self.request))

    @extend_schema(operation_id="operations_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class OperationDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: OperationOutput}, operation_id="operations_get")
    def get(self, request: Request, operation_id: int) -> Response:
        operation = pipeline.operation_for(user=current_user(request), operation_id=operation_id)
        return Response(OperationOutput(operation).data)


class OperationOptionsApi(APIView):
    """WebAuthn request options to approve an operation (again, after a reload)."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class OutputSerializer(serializers.Serializer[Any]):
        operation = OperationOutput()
        publicKey = serializers.DictField()  # the WebAuthn JSON name

    @extend_schema(
        request=None, responses={200: OutputSerializer}, operation_id="operations_options"
    )
    def post(self, request: Request, operation_id: int) -> Response:
        operation, options = pipeline.signing_options(
            user=current_user(request), operation_id=operation_id
        )
        return Response({"operation": OperationOutput(operation).data, "publicKey": options})


class OperationSignApi(APIView):
    """The browser's assertion over the operation's hash: verified, encoded, queued."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        credential = CredentialField()

    @extend_schema(
        request=InputSerializer, responses={200: OperationOutput}, operation_id="operations_sign"
    )
    def post(self, request: Request, operation_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        operation = pipeline.sign_operation(
            user=current_user(request),
            operation_id=operation_id,
            credential=data.validated_data["credential"],
            client=ClientInfo.from_request(request),
        )
        return Response(OperationOutput(operation).data)


class OperationRetryApi(APIView):
    """Ask again for a passkey change on chain whose approval expired or whose operation failed."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: OperationOutput}, operation_id="operation_retry")
    def post(self, request: Request, operation_id: int) -> Response:
        operation = retry_passkey_operation(user=current_user(request), operation_id=operation_id)
        return Response(OperationOutput(operation).data, status=status.HTTP_201_CREATED)
