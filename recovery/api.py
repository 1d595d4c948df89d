"""The recovery API: guardians (`guardians`, `guardians/{id}`, `guardians/{id}/accept`,
`guardians/enable`), the recovery code (`recovery-codes`, `recovery-codes/options`) and recovery
requests (`recoveries/options`, `recoveries`, `recoveries/{id}`, `.../approve`, `.../refuse`,
`.../discard`, `.../recovery-code`). Each chain step answers with the
operation to approve through `operations/{id}/options|sign`."""

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import current_user
from accounts.selectors import smart_account_of
from accounts.serializers import OperationOutput, UsernameField
from chain import recovery_calls
from passkeys.serializers import CeremonyIdField, CredentialField
from portal.client_info import ClientInfo
from portal.errors import NotFound
from portal.fields import StrictCharField
from portal.throttling import AuthRateThrottle
from portal.validators import reject_control_characters
from recovery import codes, services
from recovery.models import Guardian, RecoveryRequest
from recovery.selectors import (
    executor_address,
    executor_installed,
    guardians_of,
    guarding,
    request_by_public_id,
)


def accept_call(guardian: Guardian) -> dict[str, str] | None:
    """The exact transaction an external guardian sends from its own wallet."""
    executor = executor_address()
    if executor is None:
        return None
    data = recovery_calls.accept_guardian(account=guardian.account.address)
    return {
        "to": executor,
        "function": "acceptGuardian(address)",
        "argument": guardian.account.address,
        "data": "0x" + data.hex(),
        "from": guardian.address,
    }


def _operation_status(operation: Any) -> str | None:
    return operation.status if operation is not None else None


class GuardianOutput(serializers.ModelSerializer[Guardian]):
    username = serializers.SerializerMethodField()
    account = serializers.CharField(source="account.address")
    owner = serializers.CharField(source="account.user.username")
    proposal_status = serializers.SerializerMethodField()
    acceptance_status = serializers.SerializerMethodField()
    removal_status = serializers.SerializerMethodField()
    accept_call = serializers.SerializerMethodField()

    class Meta:
        model = Guardian
        fields = [
            "id",
            "address",
            "kind",
            "status",
            "username",
            "account",
            "owner",
            "proposed_on_chain",
            "proposal_status",
            "acceptance_status",
            "removal_status",
            "accept_call",
            "created_at",
            "activated_at",
            "removed_at",
            "used_at",
        ]

    def get_username(self, guardian: Guardian) -> str | None:
        return guardian.guardian_user.username if guardian.guardian_user else None

    def get_proposal_status(self, guardian: Guardian) -> str | None:
        return _operation_status(guardian.proposal_operation)

    def get_acceptance_status(self, guardian: Guardian) -> str | None:
        return _operation_status(guardian.acceptance_operation)

    def get_removal_status(self, guardian: Guardian) -> str | None:
        return _operation_status(guardian.removal_operation)

    def get_accept_call(self, guardian: Guardian) -> dict[str, str] | None:
        if guardian.kind != Guardian.Kind.EXTERNAL or guardian.status != Guardian.Status.PROPOSED:
            return None
        return accept_call(guardian)


class GuardianChangeOutput(serializers.Serializer[Any]):
    guardian = GuardianOutput()
    operation = OperationOutput(allow_null=True)


class GuardianListApi(APIView):
    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer[Any]):
        username = UsernameField(required=False)
        address = StrictCharField(max_length=42, required=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if bool(attrs.get("username")) == bool(attrs.get("address")):
                raise serializers.ValidationError("Give either a username or an address.")
            return attrs

    class OutputSerializer(serializers.Serializer[Any]):
        recovery_enabled = serializers.BooleanField()
        guardians = GuardianOutput(many=True)
        guarding = GuardianOutput(many=True)

    @extend_schema(responses={200: OutputSerializer}, operation_id="guardians_list")
    def get(self, request: Request) -> Response:
        user = current_user(request)
        mine = guardians_of(user=user)
        account = smart_account_of(user=user)
        enabled = account is not None and executor_installed(account=account)
        return Response(
            self.OutputSerializer(
                {"recovery_enabled": enabled, "guardians": mine, "guarding": guarding(user=user)}
            ).data
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: GuardianChangeOutput},
        operation_id="guardians_propose",
    )
    def post(self, request: Request) -> Response:
        """Propose a guardian: another portal user by username, or any address."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = services.propose_guardian(
            user=current_user(request),
            username=data.validated_data.get("username"),
            address=data.validated_data.get("address"),
            client=ClientInfo.from_request(request),
        )
        return Response(
            GuardianChangeOutput(change).data,
            status=status.HTTP_201_CREATED,
        )


class GuardianEnableApi(APIView):
    """Install the GuardianExecutor on an account opened before it existed."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={201: OperationOutput}, operation_id="guardians_enable")
    def post(self, request: Request) -> Response:
        operation = services.enable_recovery(user=current_user(request))
        return Response(OperationOutput(operation).data, status=status.HTTP_201_CREATED)


class GuardianDetailApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: GuardianChangeOutput}, operation_id="guardians_remove"
    )
    def delete(self, request: Request, guardian_id: int) -> Response:
        """Withdraw a proposal (at once) or remove a guardian (a passkey-approved
        removeGuardian; 202 until it is on chain)."""
        change = services.remove_guardian(
            user=current_user(request),
            guardian_id=guardian_id,
            client=ClientInfo.from_request(request),
        )
        code = status.HTTP_202_ACCEPTED if change.operation else status.HTTP_200_OK
        return Response(GuardianChangeOutput(change).data, status=code)


class GuardianAcceptApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={201: GuardianChangeOutput}, operation_id="guardians_accept"
    )
    def post(self, request: Request, guardian_id: int) -> Response:
        change = services.accept_guardian(
            user=current_user(request),
            guardian_id=guardian_id,
            client=ClientInfo.from_request(request),
        )
        return Response(GuardianChangeOutput(change).data, status=status.HTTP_201_CREATED)


# --- recoveries --------------------------------------------------------------------------------


class RecoveryOutput(serializers.ModelSerializer[RecoveryRequest]):
    """What anyone holding the request's id sees: no code, no requester details."""

    id = serializers.UUIDField(source="public_id")
    username = serializers.CharField(source="user.username")
    account = serializers.CharField(source="account.address")
    completes_at = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    approved = serializers.SerializerMethodField()
    initiate_status = serializers.SerializerMethodField()
    finalize_status = serializers.SerializerMethodField()
    discard_status = serializers.SerializerMethodField()

    class Meta:
        model = RecoveryRequest
        fields = [
            "id",
            "username",
            "account",
            "status",
            "fingerprint",
            "created_at",
            "approval_deadline",
            "approved",
            "initiated_at",
            "completes_at",
            "expires_at",
            "ended_at",
            "end_reason",
            "initiate_status",
            "finalize_status",
            "discard_status",
        ]

    def get_approved(self, request: RecoveryRequest) -> bool:
        return request.approved_by_id is not None

    def get_initiate_status(self, request: RecoveryRequest) -> str | None:
        return _operation_status(request.initiate_operation)

    def get_finalize_status(self, request: RecoveryRequest) -> str | None:
        return _operation_status(request.finalize_operation)

    def get_discard_status(self, request: RecoveryRequest) -> str | None:
        return _operation_status(request.discard_operation)


class RecoveryDetailOutput(RecoveryOutput):
    """The owner and the account's guardians also see who started it."""

    requester_ip = serializers.IPAddressField(allow_null=True)
    requester_agent = serializers.CharField()

    class Meta(RecoveryOutput.Meta):
        fields = [*RecoveryOutput.Meta.fields, "requester_ip", "requester_agent"]


class RecoveryStartOutput(RecoveryOutput):
    code = serializers.CharField()

    class Meta(RecoveryOutput.Meta):
        fields = [*RecoveryOutput.Meta.fields, "code"]


class RecoveryOptionsApi(APIView):
    """Start of a recovery, not signed in: creation options for the new passkey."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        username = UsernameField()

    class OutputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        publicKey = serializers.DictField()  # the WebAuthn JSON name

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        operation_id="recoveries_options",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.begin_recovery(username=data.validated_data["username"])
        return Response(
            {"ceremony_id": result.ceremony.ceremony_id, "publicKey": result.public_key}
        )


class RecoveryStartApi(APIView):
    """The new passkey's registration response: verified, and the request opened."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        username = UsernameField()
        ceremony_id = CeremonyIdField()
        credential = CredentialField()
        passkey_name = StrictCharField(
            max_length=64, required=False, allow_blank=True, validators=[reject_control_characters]
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: RecoveryStartOutput},
        operation_id="recoveries_start",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        started = services.start_recovery(
            username=data.validated_data["username"],
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            passkey_name=data.validated_data.get("passkey_name", ""),
            client=ClientInfo.from_request(request),
        )
        started.request.code = started.code  # type: ignore[attr-defined]
        return Response(RecoveryStartOutput(started.request).data, status=status.HTTP_201_CREATED)


def _find(public_id: Any) -> RecoveryRequest:
    found = request_by_public_id(public_id)
    if found is None:
        raise NotFound("recovery_not_found", "No such recovery.")
    return found


def _may_see_details(request: Request, recovery: RecoveryRequest) -> bool:
    user = request.user
    if user is None or not user.is_authenticated:
        return False
    if recovery.user_id == user.pk:
        return True
    return Guardian.objects.filter(
        account=recovery.account, guardian_user=user, status=Guardian.Status.ACTIVE
    ).exists()


class RecoveryDetailApi(APIView):
    """A request's state and countdown: anyone with its id (the requester's page); the owner and
    its guardians also see who started it."""

    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    @extend_schema(responses={200: RecoveryDetailOutput}, operation_id="recoveries_detail")
    def get(self, request: Request, public_id: Any) -> Response:
        recovery = _find(public_id)
        if _may_see_details(request, recovery):
            return Response(RecoveryDetailOutput(recovery).data)
        return Response(RecoveryOutput(recovery).data)


class RecoveryChangeOutput(serializers.Serializer[Any]):
    recovery = RecoveryDetailOutput()
    operation = OperationOutput(allow_null=True)


class RecoveryApproveApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        code = StrictCharField(max_length=16)

    @extend_schema(
        request=InputSerializer,
        responses={201: RecoveryChangeOutput},
        operation_id="recoveries_approve",
    )
    def post(self, request: Request, public_id: Any) -> Response:
        """A guardian approves after comparing the code the requester reads out: a
        passkey-approved initializeRecovery from their own account."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recovery, operation = services.approve_recovery(
            user=current_user(request),
            public_id=public_id,
            code=data.validated_data["code"],
            client=ClientInfo.from_request(request),
        )
        return Response(
            RecoveryChangeOutput({"recovery": recovery, "operation": operation}).data,
            status=status.HTTP_201_CREATED,
        )


class RecoveryRefuseApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: RecoveryDetailOutput}, operation_id="recoveries_refuse"
    )
    def post(self, request: Request, public_id: Any) -> Response:
        recovery = services.refuse_recovery(
            user=current_user(request), public_id=public_id, client=ClientInfo.from_request(request)
        )
        return Response(RecoveryDetailOutput(recovery).data)


class RecoveryDiscardApi(APIView):
    permission_classes = [IsAuthenticated]

    @extend_schema(
        request=None, responses={200: RecoveryChangeOutput}, operation_id="recoveries_discard"
    )
    def post(self, request: Request, public_id: Any) -> Response:
        """The owner cancels: at once before anything reached the chain (200), else a
        passkey-approved discardRecovery (202)."""
        recovery, operation = services.discard_recovery(
            user=current_user(request), public_id=public_id, client=ClientInfo.from_request(request)
        )
        code = status.HTTP_202_ACCEPTED if operation else status.HTTP_200_OK
        return Response(
            RecoveryChangeOutput({"recovery": recovery, "operation": operation}).data, status=code
        )


# --- recovery codes ------------------------------------------------------------------------------


class SignatureField(StrictCharField):
    """A 65-byte secp256k1 signature (r ‖ s ‖ v) in hex."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=132, **kwargs)

    def to_internal_value(self, data: Any) -> bytes:  # type: ignore[override]
        text = str(super().to_internal_value(data)).removeprefix("0x")
        try:
            raw = bytes.fromhex(text)
        except ValueError as exc:
            raise serializers.ValidationError("Not a hex signature.") from exc
        if len(raw) != 65:
            raise serializers.ValidationError("A signature is 65 bytes.")
        return raw


class DeadlineField(serializers.IntegerField):
    """The chain time (seconds) until which a signature is valid."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(min_value=0, max_value=2**48 - 1, **kwargs)


class TypedDataOutput(serializers.Serializer[Any]):
    """EIP-712 typed data for the recovery key to sign (ethers' signTypedData takes its
    `domain`, `types` and `message`)."""

    typed_data = serializers.DictField()


class RecoveryCodeApi(APIView):
    """The person's recovery code: its guardian address and state (never the code)."""

    permission_classes = [IsAuthenticated]

    class OutputSerializer(serializers.Serializer[Any]):
        recovery_code = GuardianOutput(allow_null=True)

    class InputSerializer(serializers.Serializer[Any]):
        address = StrictCharField(max_length=42)
        deadline = DeadlineField()
        signature = SignatureField()

    @extend_schema(responses={200: OutputSerializer}, operation_id="recovery_codes_current")
    def get(self, request: Request) -> Response:
        code = codes.current_code(account=smart_account_of(user=current_user(request)))
        return Response(self.OutputSerializer({"recovery_code": code}).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: GuardianChangeOutput},
        operation_id="recovery_codes_create",
    )
    def post(self, request: Request) -> Response:
        """Install a new code's address as a guardian (replacing the previous code) with the
        key's AcceptGuardian signature: a passkey-approved operation."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        change = codes.create_recovery_code(
            user=current_user(request),
            address=data.validated_data["address"],
            deadline=data.validated_data["deadline"],
            signature=data.validated_data["signature"],
            client=ClientInfo.from_request(request),
        )
        return Response(GuardianChangeOutput(change).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=None, responses={200: GuardianChangeOutput}, operation_id="recovery_codes_revoke"
    )
    def delete(self, request: Request) -> Response:
        """Revoke the code: at once before it is on chain (200), else a passkey-approved
        removeGuardian (202)."""
        change = codes.revoke_recovery_code(
            user=current_user(request), client=ClientInfo.from_request(request)
        )
        code = status.HTTP_202_ACCEPTED if change.operation else status.HTTP_200_OK
        return Response(GuardianChangeOutput(change).data, status=code)


class RecoveryCodeOptionsApi(APIView):
    """What a new code's key signs before it is installed: AcceptGuardian of the account."""

    permission_classes = [IsAuthenticated]

    class InputSerializer(serializers.Serializer[Any]):
        address = StrictCharField(max_length=42)

    @extend_schema(
        request=InputSerializer,
        responses={200: TypedDataOutput},
        operation_id="recovery_codes_options",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        typed = codes.creation_typed_data(
            user=current_user(request), address=data.validated_data["address"]
        )
        return Response(TypedDataOutput({"typed_data": typed}).data)


class RecoveryWithCodeApi(APIView):
    """Start an opened request on chain with the account's recovery code (not signed in):
    GET what the key signs, POST its signature; the portal's relayer submits it."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        deadline = DeadlineField()
        signature = SignatureField()

    @extend_schema(responses={200: TypedDataOutput}, operation_id="recoveries_code_options")
    def get(self, request: Request, public_id: Any) -> Response:
        return Response(
            TypedDataOutput({"typed_data": codes.recovery_typed_data(public_id=public_id)}).data
        )

    @extend_schema(
        request=InputSerializer,
        responses={201: RecoveryChangeOutput},
        operation_id="recoveries_code_start",
    )
    def post(self, request: Request, public_id: Any) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recovery, operation = codes.recover_with_code(
            public_id=public_id,
            deadline=data.validated_data["deadline"],
            signature=data.validated_data["signature"],
            client=ClientInfo.from_request(request),
        )
        return Response(
            RecoveryChangeOutput({"recovery": recovery, "operation": operation}).data,
            status=status.HTTP_201_CREATED,
        )
