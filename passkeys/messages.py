"""Messages signed with a passkey for a dapp: personal_sign and eth_signTypedData_v4, in the form
any ERC-1271 verifier accepts (mirrors `passkeys.approvals`, for messages instead of operations).

1. `request_message_signature`: chain (`chain.erc7739`) nests the message for the person's smart
   account; a ceremony whose challenge is the nested digest is created with a SignatureRequest
   that remembers what was asked; WebAuthn request options come back, offering the passkeys that
   can sign for the account (those active on chain; before deployment, the sign-up passkey that
   the deployment installs).
2. `sign_message`: the assertion is verified with the sign-in rules, plus the chain's (the passkey
   can sign for the account, the origin is the one keys are registered under), encoded for the
   WebAuthnValidator and nested; an account not deployed yet gets an ERC-6492 wrapper (the
   factory and its deployAccount call), so a verifier can deploy it in a simulation.

Nothing is sent to the chain, and nothing but the request's `signed_at` and passkey is kept.

A dapp's request names its `origin`: it is kept on the request and in the audit log, and checked
by the origin checks feature apps register (`register_origin_check`: sessionkeys refuses an
origin the person has not connected), so passkeys never imports them.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent, SmartAccount, User
from accounts.selectors import smart_account_of
from accounts.services import record_event, refusals_recorded
from accounts.smart_accounts import chain_origin, installed_credential_id, portal_contracts
from chain import erc7739, userops
from chain.passkey_signatures import passkey_signature
from passkeys import webauthn
from passkeys.ceremonies import consume_ceremony, verify_passkey_assertion
from passkeys.models import Ceremony, Passkey, SignatureRequest
from passkeys.selectors import credential_descriptors
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError
from portal.validators import check_dapp_origin

Kind = SignatureRequest.Kind

# name → check(user=, origin=): raises a PortalError to refuse a dapp's origin.
OriginCheck = Callable[..., None]
_origin_checks: dict[str, OriginCheck] = {}


def register_origin_check(name: str, check: OriginCheck) -> None:
    """Register (or replace) a check of the dapp origin a message is signed for; idempotent
    across ready() calls."""
    _origin_checks[name] = check


def _check_origin(*, user: User, origin: str) -> None:
    check_dapp_origin(origin)
    for check in list(_origin_checks.values()):
        check(user=user, origin=origin)


@dataclass(frozen=True)
class MessageOptions:
    request: SignatureRequest
    ceremony: Ceremony
    public_key: dict[str, Any]


@dataclass(frozen=True)
class SignedMessage:
    request: SignatureRequest
    # The signature to hand to a verifier: ERC-6492-wrapped when the account is not deployed.
    signature: bytes
    erc6492: bool


def _contracts() -> dict[str, str]:
    contracts = portal_contracts()
    if contracts is None:
        raise Conflict("chain_not_configured", "The portal's contracts are not deployed.")
    return contracts


def _deployed(account: SmartAccount) -> bool:
    return account.status == SmartAccount.Status.DEPLOYED


def _signers(*, user: User, account: SmartAccount) -> list[webauthn.CredentialDescriptor]:
    """The passkeys that can sign for the account now."""
    if _deployed(account):
        return credential_descriptors(user=user, on_chain=True)
    installed = installed_credential_id(account)
    return [
        descriptor
        for descriptor in credential_descriptors(user=user)
        if descriptor.credential_id == installed
    ]


def _nest(
    *, account: SmartAccount, kind: str, message: str | bytes | None, typed_data: Any
) -> tuple[erc7739.NestedMessage, dict[str, Any]]:
    """The nested message, and what the person is shown of it."""
    if kind == Kind.PERSONAL_SIGN:
        if isinstance(message, str):
            data, shown = message.encode("utf-8"), {"text": message}
        elif isinstance(message, bytes):
            data, shown = message, {"raw": "0x" + message.hex()}
        else:
            raise PortalError("invalid_message", "A message (text or bytes) is required.")
        nested = erc7739.personal_message(
            account=account.address, chain_id=account.chain_id, message=data
        )
        return nested, shown
    if kind == Kind.TYPED_DATA:
        try:
            nested = erc7739.typed_message(
                account=account.address, chain_id=account.chain_id, typed_data=typed_data
            )
            return nested, dict(typed_data)
        except erc7739.TypedDataRefused as refused:
            raise PortalError(refused.code, refused.detail) from refused
    raise PortalError("invalid_kind", "Sign a message (personal_sign) or typed data.")


def request_message_signature(
    *,
    user: User,
    account: SmartAccount,
    kind: str,
    message: str | bytes | None = None,
    typed_data: dict[str, Any] | None = None,
    origin: str = "",
) -> MessageOptions:
    """WebAuthn options to sign `message` (kind `personal_sign`: text, or bytes) or `typed_data`
    (kind `typed_data`: {types, primaryType, domain, message}) for the user's `account`; the
    challenge is the ERC-7739 digest the account checks. `origin`: the dapp that asks, if any."""
    if account.user_id != user.pk:
        raise NotFound("account_not_found", "No such account.")
    if origin:
        _check_origin(user=user, origin=origin)
    _contracts()
    nested, shown = _nest(account=account, kind=kind, message=message, typed_data=typed_data)
    allow = _signers(user=user, account=account)
    if not allow:
        raise Conflict(
            "no_signing_passkey", "None of your passkeys can sign for your account on chain yet."
        )
    now = timezone.now()
    with transaction.atomic():
        ceremony = Ceremony.objects.create(
            purpose=Ceremony.Purpose.MESSAGE,
            user=user,
            challenge=nested.digest,
            created_at=now,
            expires_at=now + settings.PORTAL_CEREMONY_TTL,
        )
        request = SignatureRequest.objects.create(
            ceremony=ceremony,
            account=account,
            kind=kind,
            message=shown,
            hash=nested.hash,
            trailer=nested.trailer,
            origin=origin,
        )
    options = webauthn.authentication_options(challenge=nested.digest, allow=allow)
    return MessageOptions(request=request, ceremony=ceremony, public_key=options)


def _verify_signer(
    *,
    ceremony: Ceremony,
    account: SmartAccount,
    credential: webauthn.AuthenticationCredential,
    client: ClientInfo,
) -> Passkey:
    """Sign-in's rules, and the chain's: this passkey can sign for the account, from the origin
    keys are registered under."""
    passkey = verify_passkey_assertion(ceremony=ceremony, credential=credential, client=client)
    if _deployed(account):
        can_sign = passkey.onchain == Passkey.OnChain.ACTIVE
    else:
        can_sign = bytes(passkey.credential_id) == installed_credential_id(account)
    if not can_sign:
        raise PortalError(
            "passkey_not_on_chain", "This passkey cannot sign for your account on chain (yet)."
        )
    origin = chain_origin()
    if webauthn.client_data_origin(credential.response.client_data_json) != origin:
        raise PortalError(
            "origin_not_on_chain", f"Sign messages on {origin}: keys are bound to it on chain."
        )
    return passkey


def sign_message(
    *, user: User, ceremony_id: Any, credential: dict[str, Any], client: ClientInfo
) -> SignedMessage:
    """Verify the browser's assertion over the request's digest and return the ERC-1271
    signature (ERC-6492-wrapped while the account is not deployed). A refusal uses the ceremony
    up, as at sign-in: ask for options again."""
    parsed = webauthn.parse_authentication_credential(credential)
    ceremony = consume_ceremony(
        ceremony_id=ceremony_id, purpose=Ceremony.Purpose.MESSAGE, user=user
    )
    request = SignatureRequest.objects.select_related("account").get(ceremony=ceremony)
    account = request.account
    with refusals_recorded(
        kind=AuditEvent.Kind.MESSAGE_REFUSED,
        user=user,
        client=client,
        signature_request_id=request.pk,
    ):
        if request.origin:
            _check_origin(user=user, origin=request.origin)
        contracts = _contracts()
        passkey = _verify_signer(
            ceremony=ceremony, account=account, credential=parsed, client=client
        )
    validator_signature = passkey_signature(
        validator=contracts["WebAuthnValidator"],
        authenticator_data=parsed.response.authenticator_data,
        client_data_json=parsed.response.client_data_json,
        signature_der=parsed.response.signature,
        credential_id=parsed.raw_id,
    ).encoded
    signature = validator_signature + bytes(request.trailer)
    wrapped = not _deployed(account)
    if wrapped:
        factory_call = userops.deploy_account_init_code(
            factory=contracts["MSAFactory"],
            salt=bytes.fromhex(account.salt[2:]),
            init_data=bytes(account.init_data),
        )[20:]
        signature = erc7739.erc6492_wrap(
            factory=contracts["MSAFactory"], factory_calldata=factory_call, signature=signature
        )
    with transaction.atomic():
        SignatureRequest.objects.filter(pk=request.pk).update(
            signed_at=timezone.now(), passkey=passkey
        )
        record_event(
            kind=AuditEvent.Kind.MESSAGE_SIGNED,
            user=user,
            client=client,
            signature_request_id=request.pk,
            message_kind=request.kind,
            account=account.address,
            hash="0x" + bytes(request.hash).hex(),
            passkey_id=passkey.pk,
            erc6492=wrapped,
            origin=request.origin,
        )
    request.refresh_from_db()
    return SignedMessage(request=request, signature=signature, erc6492=wrapped)


def signable_account(*, user: User) -> SmartAccount:
    """The user's smart account on the configured chain (404 `account_not_found` without one)."""
    account = smart_account_of(user=user)
    if account is None:
        raise NotFound("account_not_found", "You have no smart account on this chain.")
    return account
