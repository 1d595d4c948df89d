"""The passkeys API: sign-up and sign-in (`auth/register`, `auth/login`), re-authentication
(`auth/reauth`), the signed-in user's passkeys (`passkeys`), the person with their resilience
(`me`), approving chain operations with a passkey (`operations/{id}/options|sign|retry`), and
signing messages for dapps with it (`signatures/options|verify`)."""

from typing import Any

from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from accounts.permissions import ReauthenticatedRecently, current_user, require_reauthentication
from accounts.serializers import OperationOutput, UsernameField, UserSummary
from accounts.services import (
    forget_ended_session,
    issue_token,
    mark_reauthenticated,
    update_profile,
)
from passkeys import services
from passkeys.approvals import approval_options, approve_operation
from passkeys.messages import request_message_signature, sign_message, signable_account
from passkeys.models import SignatureRequest
from passkeys.onchain import retry_passkey_operation
from passkeys.selectors import account_resilience, owns_passkey, passkey_list, with_providers
from passkeys.serializers import (
    CeremonyIdField,
    CredentialField,
    HexBytesField,
    PasskeyNameField,
    PasskeyOutput,
    TypedDataField,
)
from portal.client_info import ClientInfo
from portal.db import one_transaction
from portal.errors import NotFound
from portal.fields import StrictCharField
from portal.throttling import AuthRateThrottle, CeremonyVerifyAPIView
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


class RegisterVerifyApi(CeremonyVerifyAPIView, CeremonyAPIView):
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


class LoginVerifyApi(CeremonyVerifyAPIView, CeremonyAPIView):
    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()

    class OutputSerializer(serializers.Serializer[Any]):
        token = serializers.CharField()
        user = UserSummary()

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="login_verify"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # No transaction around the whole: the used-up ceremony (and a refusal's audit event)
        # must stay, and what a sign-in writes is atomic by itself (record_token_sign_in).
        user, token = services.sign_in_with_token(
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            client=ClientInfo.from_request(request),
        )
        return Response(self.OutputSerializer({"token": token, "user": user}).data)


HINTS = ["client-device", "security-key", "hybrid"]


class ReauthOptionsApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    @extend_schema(request=None, responses={200: CeremonyOutput}, operation_id="reauth_options")
    def post(self, request: Request) -> Response:
        return ceremony_response(services.begin_reauthentication(user=current_user(request)))


class ReauthVerifyApi(CeremonyVerifyAPIView):
    permission_classes = [IsAuthenticated]

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


class ResilienceOutput(serializers.Serializer[Any]):
    level = serializers.ChoiceField(choices=["ok", "at_risk"])
    reasons = serializers.ListField(child=serializers.CharField())
    warnings = serializers.ListField(child=serializers.CharField())
    facts = serializers.DictField(child=serializers.IntegerField())


class MeApi(APIView):
    class OutputSerializer(serializers.ModelSerializer[User]):
        resilience = serializers.SerializerMethodField()

        class Meta:
            model = User
            fields = ["id", "username", "display_name", "email", "date_joined", "resilience"]

        @extend_schema_field(ResilienceOutput)
        def get_resilience(self, user: User) -> dict[str, object]:
            return dict(ResilienceOutput(account_resilience(user=user)).data)

    class InputSerializer(serializers.Serializer[Any]):
        display_name = StrictCharField(
            max_length=64, required=False, allow_blank=True, validators=[reject_control_characters]
        )
        email = serializers.EmailField(required=False, allow_blank=True, max_length=254)

    @extend_schema(responses={200: OutputSerializer}, operation_id="me")
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(current_user(request)).data)

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="me_update"
    )
    def patch(self, request: Request) -> Response:
        """Change the display name, or (with a fresh passkey confirmation) the email address."""
        user = current_user(request)
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
        operation, options = approval_options(user=current_user(request), operation_id=operation_id)
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
        operation = approve_operation(
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


class SignatureRequestOutput(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=SignatureRequest.Kind.choices)
    account = serializers.CharField(help_text="the smart account that signs")
    chain_id = serializers.IntegerField()
    hash = serializers.CharField(help_text="what a verifier passes to isValidSignature (0x hex)")
    origin = serializers.CharField(help_text="the dapp that asked, or empty")


def signature_request_data(signature_request: SignatureRequest) -> dict[str, Any]:
    account = signature_request.account
    return {
        "id": signature_request.pk,
        "kind": signature_request.kind,
        "account": account.address,
        "chain_id": account.chain_id,
        "hash": "0x" + bytes(signature_request.hash).hex(),
        "origin": signature_request.origin,
    }


class SignatureOptionsApi(APIView):
    """WebAuthn options to sign a message (personal_sign) or typed data (eth_signTypedData_v4)
    for the person's smart account; the challenge is the ERC-7739 digest the account checks."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        kind = serializers.ChoiceField(choices=SignatureRequest.Kind.choices)
        message = StrictCharField(
            required=False, allow_blank=True, trim_whitespace=False, max_length=16384
        )
        raw = HexBytesField(required=False, help_text="the message as 0x hex bytes")
        typed_data = TypedDataField(
            required=False, help_text="{types, primaryType, domain, message}"
        )
        origin = StrictCharField(
            required=False,
            max_length=255,
            help_text="the dapp that asks (scheme://host[:port]); it must be connected",
        )

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            given = {name for name in ("message", "raw", "typed_data") if name in attrs}
            wanted = (
                [{"message"}, {"raw"}] if attrs["kind"] == "personal_sign" else [{"typed_data"}]
            )
            if given not in wanted:
                raise serializers.ValidationError(
                    "personal_sign takes `message` (text) or `raw` (0x hex); "
                    "typed_data takes `typed_data`."
                )
            return attrs

    class OutputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        publicKey = serializers.DictField()  # the WebAuthn JSON name
        request = SignatureRequestOutput()

    @extend_schema(
        request=InputSerializer,
        responses={200: OutputSerializer},
        operation_id="signatures_options",
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = current_user(request)
        fields = data.validated_data
        result = request_message_signature(
            user=user,
            account=signable_account(user=user),
            kind=fields["kind"],
            message=fields.get("message", fields.get("raw")),
            typed_data=fields.get("typed_data"),
            origin=fields.get("origin", ""),
        )
        return Response(
            {
                "ceremony_id": result.ceremony.ceremony_id,
                "publicKey": result.public_key,
                "request": signature_request_data(result.request),
            }
        )


class SignatureVerifyApi(APIView):
    """The browser's assertion over the digest: verified and returned as the ERC-1271 signature
    (ERC-6492-wrapped while the account is not deployed)."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    class InputSerializer(serializers.Serializer[Any]):
        ceremony_id = CeremonyIdField()
        credential = CredentialField()

    class OutputSerializer(SignatureRequestOutput):
        signature = serializers.CharField(help_text="the signature for isValidSignature (0x hex)")
        erc6492 = serializers.BooleanField(help_text="wrapped for an account not deployed yet")

    @extend_schema(
        request=InputSerializer, responses={200: OutputSerializer}, operation_id="signatures_verify"
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        signed = sign_message(
            user=current_user(request),
            ceremony_id=data.validated_data["ceremony_id"],
            credential=data.validated_data["credential"],
            client=ClientInfo.from_request(request),
        )
        return Response(
            {
                **signature_request_data(signed.request),
                "signature": "0x" + signed.signature.hex(),
                "erc6492": signed.erc6492,
            }
        )
