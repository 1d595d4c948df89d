"""The dapps API the /connect popup calls for a dapp (issue 14): connect, the person's connected
dapps, disconnect, calls (preview, passkey-approved creation, EIP-5792 status) and the
capabilities. The status and the capabilities are public (CORS, no credentials): a bundle's id is
the secret that reads its status."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import current_user
from chain import userops
from portal.client_info import ClientInfo
from portal.errors import NotFound, PortalError
from portal.fields import StrictCharField
from portal.validators import reject_control_characters
from sessionkeys import connections, dapp_calls
from sessionkeys.api import CallInput as RelayCallInput
from sessionkeys.api import RelayAPIView
from sessionkeys.models import DappConnection

BUNDLE_ID = re.compile(r"^0x[0-9a-fA-F]{64}$")
MAX_CALL_DATA_CHARS = 2 + 2 * 32 * 1024
# A refusal of these fields has its own code (the provider maps them to -32602).
FIELD_CODES = {"origin": "invalid_origin", "calls": "invalid_calls"}


def validated(serializer: serializers.Serializer[Any]) -> dict[str, Any]:
    if not serializer.is_valid():
        for field, code in FIELD_CODES.items():
            if field in serializer.errors:
                raise PortalError(
                    code, f"Invalid {field}.", errors={field: serializer.errors[field]}
                )
        raise serializers.ValidationError(serializer.errors)
    return dict(serializer.validated_data)


class OriginInput(serializers.Serializer[Any]):
    origin = StrictCharField(max_length=255, help_text="the dapp's origin: scheme://host[:port]")


class CallInput(RelayCallInput):
    to = StrictCharField(max_length=42, help_text="the called address")
    value = StrictCharField(
        max_length=80, required=False, default="0", help_text="wei: decimal or 0x-hex string"
    )

    def validate_data(self, value: bytes) -> bytes:
        if 2 + 2 * len(value) > MAX_CALL_DATA_CHARS:
            raise serializers.ValidationError("Too long.")
        return value


class CallsInput(OriginInput):
    calls = serializers.ListField(
        child=CallInput(), allow_empty=False, max_length=dapp_calls.MAX_CALLS
    )


def calls_of(data: dict[str, Any]) -> list[userops.Call]:
    return [
        userops.Call(target=call["to"], value=call["value"], data=call["data"])
        for call in data["calls"]
    ]


# --- connections --------------------------------------------------------------------------------


class ConnectOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    origin = serializers.CharField()
    accounts = serializers.ListField(child=serializers.CharField())
    chainId = serializers.CharField()
    first_time = serializers.BooleanField()


class DappConnectApi(APIView):
    """eth_requestAccounts: connect the dapp (or again); its accounts and chain."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=OriginInput, responses={200: ConnectOutput}, operation_id="dapps_connect"
    )
    def post(self, request: Request) -> Response:
        data = validated(OriginInput(data=request.data))
        connected = connections.connect(
            user=current_user(request),
            origin=data["origin"],
            client=ClientInfo.from_request(request),
        )
        connection = connected.connection
        return Response(
            {
                "id": connection.pk,
                "origin": connection.origin,
                "accounts": [connection.account.address],
                "chainId": hex(settings.CHAIN_ID),
                "first_time": connected.first_time,
            }
        )


class AllowedSessionOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AllowedOutput(serializers.Serializer[Any]):
    sessions = AllowedSessionOutput(many=True)
    signed_messages = serializers.IntegerField()
    call_bundles = serializers.IntegerField()


class ConnectionOutput(serializers.ModelSerializer[DappConnection]):
    account = serializers.CharField(source="account.address")
    active = serializers.BooleanField()
    allowed = serializers.SerializerMethodField()

    class Meta:
        model = DappConnection
        fields = [
            "id",
            "origin",
            "account",
            "active",
            "connected_at",
            "last_used_at",
            "disconnected_at",
            "allowed",
        ]

    @extend_schema_field(AllowedOutput)
    def get_allowed(self, connection: DappConnection) -> dict[str, Any]:
        return connections.allowed(connection)


class DappListApi(APIView):
    """The person's connected dapps (`?all=1`: disconnected ones too) and what each was
    allowed."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[OpenApiParameter("all", OpenApiTypes.BOOL, required=False)],
        responses={200: ConnectionOutput(many=True)},
        operation_id="dapps_list",
    )
    def get(self, request: Request) -> Response:
        everything = request.query_params.get("all") in ("1", "true")
        found = connections.connections_of(user=current_user(request), active=not everything)
        return Response(ConnectionOutput(found[:200], many=True).data)


class DappDisconnectOriginApi(APIView):
    """wallet_disconnect: the dapp is disconnected (200 also when it was not connected)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=OriginInput, responses={200: OriginInput}, operation_id="dapps_disconnect"
    )
    def post(self, request: Request) -> Response:
        data = validated(OriginInput(data=request.data))
        connections.disconnect_origin(
            user=current_user(request),
            origin=data["origin"],
            client=ClientInfo.from_request(request),
        )
        return Response({"origin": data["origin"]})


class DappDisconnectApi(APIView):
    """The person disconnects one of their dapps."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: ConnectionOutput}, operation_id="dapps_disconnect_one"
    )
    def post(self, request: Request, connection_id: int) -> Response:
        connection = connections.disconnect(
            user=current_user(request),
            connection_id=connection_id,
            client=ClientInfo.from_request(request),
        )
        return Response(ConnectionOutput(connection).data)


# --- calls --------------------------------------------------------------------------------------


class DecodedCallOutput(serializers.Serializer[Any]):
    target = serializers.CharField()
    value = serializers.CharField(help_text="wei, decimal")
    value_eth = serializers.CharField()
    data = serializers.CharField()  # type: ignore[assignment]
    selector = serializers.CharField(allow_null=True)
    function = serializers.CharField(allow_null=True, help_text="when the ABI is known")
    arguments = serializers.ListField(child=serializers.JSONField(), allow_null=True)


class TokenChangeOutput(serializers.Serializer[Any]):
    token = serializers.CharField()
    change = serializers.CharField(help_text="signed, in the token's smallest unit")


class BalanceChangeOutput(serializers.Serializer[Any]):
    native = serializers.CharField(help_text="wei, signed decimal")
    tokens = TokenChangeOutput(many=True)


class SimulationOutput(serializers.Serializer[Any]):
    success = serializers.BooleanField()
    revert_reason = serializers.CharField(allow_null=True)
    balance_change = BalanceChangeOutput(allow_null=True)


class FlagOutput(serializers.Serializer[Any]):
    code = serializers.CharField()
    severity = serializers.ChoiceField(choices=["warning", "danger"])
    text = serializers.CharField()


class ReviewOutput(serializers.Serializer[Any]):
    origin = serializers.CharField()
    origin_seen = serializers.BooleanField()
    account = serializers.CharField()
    calls = DecodedCallOutput(many=True)
    simulation = SimulationOutput()
    flags = FlagOutput(many=True)


class PreviewOutput(serializers.Serializer[Any]):
    review = ReviewOutput()


class DappCallsPreviewApi(APIView):
    """What the calls do (decoded, simulated on the chain, flagged), before the passkey."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=CallsInput, responses={200: PreviewOutput}, operation_id="dapps_calls_preview"
    )
    def post(self, request: Request) -> Response:
        data = validated(CallsInput(data=request.data))
        review = dapp_calls.preview(
            user=current_user(request),
            origin=data["origin"],
            calls=calls_of(data),
            client=ClientInfo.from_request(request),
        )
        return Response({"review": review})


class CallsCreateInput(CallsInput):
    idempotency_key = StrictCharField(
        max_length=100, validators=[reject_control_characters], help_text="one per dapp request"
    )


class OperationRefOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    status = serializers.CharField()


class CallsCreatedOutput(serializers.Serializer[Any]):
    id = serializers.CharField(help_text="the EIP-5792 bundle id")
    operation = OperationRefOutput()


class DappCallsApi(APIView):
    """eth_sendTransaction / wallet_sendCalls: the calls as one user operation waiting for the
    passkey (then `operations/{operation.id}/options|sign`). The same key: the same bundle."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=CallsCreateInput,
        responses={201: CallsCreatedOutput, 200: CallsCreatedOutput},
        operation_id="dapps_calls_create",
    )
    def post(self, request: Request) -> Response:
        data = validated(CallsCreateInput(data=request.data))
        requested = dapp_calls.request_calls(
            user=current_user(request),
            origin=data["origin"],
            calls=calls_of(data),
            idempotency_key=data["idempotency_key"],
            client=ClientInfo.from_request(request),
        )
        operation = requested.bundle.operation
        return Response(
            {
                "id": requested.bundle.bundle_id,
                "operation": {"id": operation.pk, "status": operation.status},
            },
            status=status.HTTP_201_CREATED if requested.created else status.HTTP_200_OK,
        )


class LogOutput(serializers.Serializer[Any]):
    address = serializers.CharField()
    data = serializers.CharField()  # type: ignore[assignment]
    topics = serializers.ListField(child=serializers.CharField())


class ReceiptOutput(serializers.Serializer[Any]):
    logs = LogOutput(many=True)
    status = serializers.CharField()
    blockHash = serializers.CharField()
    blockNumber = serializers.CharField()
    gasUsed = serializers.CharField()
    transactionHash = serializers.CharField()


class CallsStatusOutput(serializers.Serializer[Any]):
    version = serializers.CharField()
    id = serializers.CharField()
    chainId = serializers.CharField()
    atomic = serializers.BooleanField()
    status = serializers.IntegerField(
        help_text="100 pending, 200 confirmed, 400 failed, 500 reverted"
    )
    receipts = ReceiptOutput(many=True)
    operation = OperationRefOutput()


class DappCallsStatusApi(RelayAPIView):
    """wallet_getCallsStatus (EIP-5792 v2), for anyone who has the bundle's id."""

    @extend_schema(responses={200: CallsStatusOutput}, operation_id="dapps_calls_status")
    def get(self, request: Request, bundle_id: str) -> Response:
        if not BUNDLE_ID.match(bundle_id):
            raise NotFound("unknown_calls", "No calls have this id.")
        return Response(dapp_calls.calls_status(bundle_id=bundle_id))


class DappCapabilitiesApi(RelayAPIView):
    """wallet_getCapabilities (EIP-5792), keyed by the chain id."""

    throttle_classes: list[type] = []

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, operation_id="dapps_capabilities")
    def get(self, request: Request) -> Response:
        return Response(dapp_calls.capabilities())
