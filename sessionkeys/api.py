"""The session-keys API: a person's sessions (list, detail with what is left, revoke one or all),
the popup's calls (preview a dapp's request, create the session, reject), and the relay dapps
call with their session key (no portal login)."""

from __future__ import annotations

import json
import re
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.permissions import current_user
from accounts.serializers import OperationOutput
from chain import userops
from portal.client_info import ClientInfo, client_address
from portal.errors import PortalError
from portal.fields import StrictCharField
from portal.validators import reject_control_characters, valid_origin
from sessionkeys import relay, selectors, services
from sessionkeys.models import Session
from sessionkeys.requests import METHODS

HEX = re.compile(r"^0x([0-9a-fA-F]{2})*$")
MAX_PARAMS_BYTES = 32 * 1024
MAX_DEPTH = 12


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max([_depth(v, level + 1) for v in value.values()] or [level + 1])
    if isinstance(value, list):
        return max([_depth(v, level + 1) for v in value] or [level + 1])
    return level


class OriginField(StrictCharField):
    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if not valid_origin(value):
            raise serializers.ValidationError("Must be an origin: scheme://host[:port].")
        return value


class ParamsField(serializers.JSONField):
    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict | list):
            raise serializers.ValidationError("Must be a JSON object or list.")
        if _depth(data) > MAX_DEPTH or len(json.dumps(data)) > MAX_PARAMS_BYTES:
            raise serializers.ValidationError("Too large or too deep.")
        return data


class HexField(StrictCharField):
    def __init__(self, *, length: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.length = length

    def to_internal_value(self, data: Any) -> bytes:  # type: ignore[override]
        value = super().to_internal_value(data)
        if not HEX.match(value) or (self.length is not None and len(value) != 2 + 2 * self.length):
            raise serializers.ValidationError(
                "Must be 0x-hex" + (f" of {self.length} bytes." if self.length else ".")
            )
        return bytes.fromhex(value[2:])


class RelayRateThrottle(SimpleRateThrottle):
    scope = "session_relay"

    def get_rate(self) -> str:
        from django.conf import settings

        return str(settings.PORTAL_SESSION_RELAY_RATE)

    def get_cache_key(self, request: Request, view: APIView) -> str:
        return self.cache_format % {"scope": self.scope, "ident": client_address(request)}


class SessionOutput(serializers.ModelSerializer[Session]):
    account = serializers.CharField(source="account.address")
    spec = serializers.JSONField(source="spec_json")
    context = serializers.SerializerMethodField()  # type: ignore[assignment]
    create_operation = OperationOutput(allow_null=True)
    revoke_operation = OperationOutput(allow_null=True)

    class Meta:
        model = Session
        fields = [
            "id",
            "account",
            "signer",
            "session_hash",
            "origin",
            "label",
            "status",
            "spec",
            "context",
            "expires_at",
            "created_at",
            "approved_at",
            "revoked_at",
            "expired_at",
            "suspended_at",
            "create_operation",
            "revoke_operation",
        ]

    def get_context(self, session: Session) -> str:
        return "0x" + bytes(session.spec).hex()


def permission_response(session: Session) -> Any:
    """What the dapp gets back: ERC-7715 PermissionResponse[] (each request with `from` and
    `context` = the encoded spec), or for SSO's shape the session and its encoded spec."""
    context = "0x" + bytes(session.spec).hex()
    request = session.request or {}
    if request.get("method") == "wallet_requestExecutionPermissions":
        return [
            {**item, "from": session.account.address, "context": context}
            for item in request.get("params") or []
        ]
    return {
        "account": session.account.address,
        "sessionHash": session.session_hash,
        "context": context,
        "sessionConfig": session.spec_json,
    }


class SessionCreateInput(serializers.Serializer[Any]):
    origin = OriginField()
    method = serializers.ChoiceField(choices=METHODS)
    params = ParamsField()
    proof = HexField(length=65)
    label = StrictCharField(  # type: ignore[assignment]
        max_length=100,
        required=False,
        allow_blank=True,
        default="",
        validators=[reject_control_characters],
    )


class SessionListApi(APIView):
    """GET: the person's sessions (`?status=`). POST: the popup creates the session the person
    approved on screen (then signs its createSession operation with
    `operations/{id}/options|sign`)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, required=False),
            OpenApiParameter(
                "context",
                str,
                required=False,
                description="an ERC-7715 permission context (0x hex): the session it names",
            ),
            OpenApiParameter("origin", str, required=False),
        ],
        responses={200: SessionOutput(many=True)},
        operation_id="sessions_list",
    )
    def get(self, request: Request) -> Response:
        sessions = selectors.sessions_of(user=current_user(request))
        wanted = request.query_params.get("status")
        if wanted:
            sessions = sessions.filter(status=wanted)
        context = request.query_params.get("context")
        if context is not None:
            if not HEX.match(context) or len(context) > 2 * MAX_PARAMS_BYTES:
                raise PortalError("invalid_context", "A permission context is 0x hex.")
            sessions = sessions.filter(session_hash=selectors.context_hash(context))
        origin = request.query_params.get("origin")
        if origin is not None:
            sessions = sessions.filter(origin=origin)
        return Response(SessionOutput(sessions[:200], many=True).data)

    @extend_schema(
        request=SessionCreateInput, responses={201: SessionOutput}, operation_id="sessions_create"
    )
    def post(self, request: Request) -> Response:
        data = SessionCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        session = services.request_session(
            user=current_user(request),
            origin=data.validated_data["origin"],
            method=data.validated_data["method"],
            params=data.validated_data["params"],
            proof=data.validated_data["proof"],
            label=data.validated_data["label"],
            client=ClientInfo.from_request(request),
        )
        return Response(SessionOutput(session).data, status=status.HTTP_201_CREATED)


class PreviewInput(serializers.Serializer[Any]):
    origin = OriginField()
    method = StrictCharField(max_length=64)
    params = ParamsField()


class SessionPreviewApi(APIView):
    """What a request gives: the spec, what the dapp's key must sign, and the review."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=PreviewInput, responses={200: dict}, operation_id="sessions_preview")
    def post(self, request: Request) -> Response:
        data = PreviewInput(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(
            services.preview_session(
                user=current_user(request),
                origin=data.validated_data["origin"],
                method=data.validated_data["method"],
                params=data.validated_data["params"],
            )
        )


class RejectInput(serializers.Serializer[Any]):
    origin = OriginField()
    method = StrictCharField(max_length=64)


class SessionRejectApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=RejectInput, responses={204: None}, operation_id="sessions_reject")
    def post(self, request: Request) -> Response:
        data = RejectInput(data=request.data)
        data.is_valid(raise_exception=True)
        services.reject_request(
            user=current_user(request),
            origin=data.validated_data["origin"],
            method=data.validated_data["method"],
            client=ClientInfo.from_request(request),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class SessionDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(responses={200: dict}, operation_id="sessions_get")
    def get(self, request: Request, session_id: int) -> Response:
        session = selectors.session_of(user=current_user(request), session_id=session_id)
        limits, read = selectors.remaining_of(session)
        body = dict(SessionOutput(session).data)
        body["limits"] = limits
        body["chain_read"] = read
        body["response"] = (
            permission_response(session) if session.status == Session.Status.ACTIVE else None
        )
        return Response(body)


class SessionRevokeApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: OperationOutput}, operation_id="sessions_revoke")
    def post(self, request: Request, session_id: int) -> Response:
        operation = services.revoke_sessions(
            user=current_user(request),
            session_ids=[session_id],
            client=ClientInfo.from_request(request),
        )
        return Response(OperationOutput(operation).data, status=status.HTTP_201_CREATED)


class SessionRevokeAllApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={201: OperationOutput}, operation_id="sessions_revoke_all"
    )
    def post(self, request: Request) -> Response:
        operation = services.revoke_sessions(
            user=current_user(request), session_ids=None, client=ClientInfo.from_request(request)
        )
        return Response(OperationOutput(operation).data, status=status.HTTP_201_CREATED)


# --- the relay ----------------------------------------------------------------------------------


class RelayAPIView(APIView):
    """No login, no cookies, no CSRF: the session key's signature is the authentication. Dapps
    call it from their own origin: any origin may (CORS, without credentials)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [RelayRateThrottle]

    def finalize_response(
        self, request: Request, response: Response, *args: Any, **kwargs: Any
    ) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        response["Access-Control-Allow-Headers"] = "Content-Type"
        response["Access-Control-Max-Age"] = "600"
        return response


class CallInput(serializers.Serializer[Any]):
    to = StrictCharField(max_length=42)
    value = StrictCharField(max_length=80, required=False, default="0x0")
    data = HexField(required=False, default=b"")  # type: ignore[assignment]

    def validate_to(self, value: str) -> str:
        from eth_utils import is_address, to_checksum_address

        if not is_address(value):
            raise serializers.ValidationError("Must be an address.")
        return str(to_checksum_address(value))

    def validate_value(self, value: str) -> int:  # type: ignore[override]
        try:
            number = int(value, 16) if value.startswith("0x") else int(value)
        except ValueError as exc:
            raise serializers.ValidationError("Must be an integer (decimal or 0x-hex).") from exc
        if not 0 <= number < 2**256:
            raise serializers.ValidationError("Out of range.")
        return number


class PrepareInput(serializers.Serializer[Any]):
    account = StrictCharField(max_length=42)
    session_hash = HexField(length=32, required=False)
    context = HexField(required=False)  # type: ignore[assignment]
    call = CallInput()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        from eth_utils import is_address, keccak, to_checksum_address

        if not is_address(attrs["account"]):
            raise serializers.ValidationError({"account": "Must be an address."})
        attrs["account"] = to_checksum_address(attrs["account"])
        if "session_hash" in attrs:
            attrs["session_hash"] = "0x" + attrs["session_hash"].hex()
        elif "context" in attrs:
            attrs["session_hash"] = "0x" + keccak(attrs["context"]).hex()
        else:
            raise serializers.ValidationError("Give session_hash or context.")
        return attrs


class RelayPrepareApi(RelayAPIView):
    @extend_schema(
        request=PrepareInput, responses={200: dict}, operation_id="sessions_operations_prepare"
    )
    def post(self, request: Request) -> Response:
        data = PrepareInput(data=request.data)
        data.is_valid(raise_exception=True)
        call = data.validated_data["call"]
        return Response(
            relay.prepare_operation(
                account=data.validated_data["account"],
                session_hash=data.validated_data["session_hash"],
                call=userops.Call(target=call["to"], value=call["value"], data=call["data"]),
                client=ClientInfo.from_request(request),
            )
        )


class SendInput(serializers.Serializer[Any]):
    userOperation = serializers.DictField()


class RelaySendApi(RelayAPIView):
    @extend_schema(
        request=SendInput, responses={202: dict}, operation_id="sessions_operations_send"
    )
    def post(self, request: Request) -> Response:
        data = SendInput(data=request.data)
        data.is_valid(raise_exception=True)
        relayed = relay.accept_operation(
            user_operation=data.validated_data["userOperation"],
            client=ClientInfo.from_request(request),
        )
        return Response(
            relay.relayed_status(user_op_hash=relayed.user_op_hash), status=status.HTTP_202_ACCEPTED
        )


class RelayStatusApi(RelayAPIView):
    @extend_schema(responses={200: dict}, operation_id="sessions_operations_get")
    def get(self, request: Request, user_op_hash: str) -> Response:
        if not re.fullmatch(r"0x[0-9a-fA-F]{64}", user_op_hash):
            raise PortalError("invalid_hash", "A user operation hash is 0x + 64 hex digits.")
        return Response(relay.relayed_status(user_op_hash=user_op_hash))
