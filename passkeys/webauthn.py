"""The one place that owns the WebAuthn rules (Level 3, §7.1 registration and §7.2 authentication).

py_webauthn does the cryptography and most of the checks. The portal checks the rest itself, before
the library runs, so that each refusal has its own stable code: the exact client data type,
`crossOrigin` and `topOrigin` (the portal is never embedded), the flags, the backup-flag
consistency, and the signature counter (which the library cannot tell apart from other failures).
RP ID and origins always come from settings.
"""

import binascii
import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    options_to_json_dict,
    parse_attestation_object,
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSECRV, COSEAlgorithmIdentifier
from webauthn.helpers.decode_credential_public_key import (
    DecodedEC2PublicKey,
    decode_credential_public_key,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AuthenticationCredential,
    AuthenticatorData,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialHint,
    RegistrationCredential,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from portal.errors import PortalError
from portal.json_limits import ensure_shallow

CEREMONY_TIMEOUT_MS = 5 * 60 * 1000
MAX_CREDENTIAL_ID_BYTES = 1023
# ES256 only: it is what the chain verifies (P256VERIFY), and Chromium picks Ed25519 if offered.
SUPPORTED_ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256]
KNOWN_TRANSPORTS = {t.value for t in AuthenticatorTransport}


class WebAuthnRefused(PortalError):
    """A credential that fails one of the WebAuthn rules. `code` says which."""


class CounterAnomaly(WebAuthnRefused):
    """The signature counter did not increase: possibly a cloned authenticator."""

    def __init__(self, *, stored: int, received: int) -> None:
        super().__init__(
            "sign_count_not_increased",
            "The authenticator's signature counter did not increase.",
        )
        self.stored = stored
        self.received = received


@dataclass(frozen=True)
class CredentialDescriptor:
    credential_id: bytes
    transports: list[str]


@dataclass(frozen=True)
class VerifiedRegistration:
    credential_id: bytes
    public_key: bytes
    sign_count: int
    aaguid: uuid.UUID | None
    transports: list[str]
    backup_eligible: bool
    backed_up: bool


@dataclass(frozen=True)
class VerifiedAssertion:
    credential_id: bytes
    sign_count: int
    backed_up: bool


def accepted_origins() -> list[str]:
    """The portal's own origins, and the related origins allowed to use its RP ID."""
    return [*settings.PORTAL_ORIGINS, *settings.PORTAL_RELATED_ORIGINS]


# --- options ---------------------------------------------------------------------------------


def _descriptors(credentials: list[CredentialDescriptor]) -> list[PublicKeyCredentialDescriptor]:
    return [
        PublicKeyCredentialDescriptor(
            id=c.credential_id,
            transports=[AuthenticatorTransport(t) for t in c.transports if t in KNOWN_TRANSPORTS],
        )
        for c in credentials
    ]


def registration_options(
    *,
    challenge: bytes,
    user_handle: bytes,
    username: str,
    display_name: str,
    exclude: list[CredentialDescriptor],
    hints: list[str] | None = None,
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptionsJSON for a discoverable, user-verified ES256 passkey."""
    options = generate_registration_options(
        rp_id=settings.PORTAL_RP_ID,
        rp_name=settings.PORTAL_RP_NAME,
        user_id=user_handle,
        user_name=username,
        user_display_name=display_name or username,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED,
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        hints=[PublicKeyCredentialHint(h) for h in hints] if hints else None,
    )
    return dict(options_to_json_dict(options))


def authentication_options(
    *, challenge: bytes, allow: list[CredentialDescriptor]
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptionsJSON; an empty `allow` lets the person pick a passkey."""
    options = generate_authentication_options(
        rp_id=settings.PORTAL_RP_ID,
        challenge=challenge,
        timeout=CEREMONY_TIMEOUT_MS,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement.REQUIRED,
    )
    return dict(options_to_json_dict(options))


# --- parsing ---------------------------------------------------------------------------------

_PARSE_ERRORS = (WebAuthnException, ValueError, TypeError, KeyError, AttributeError, binascii.Error)


def _malformed(what: str) -> WebAuthnRefused:
    return WebAuthnRefused("invalid_credential", f"The credential is malformed: {what}.")


def parse_registration_credential(data: dict[str, Any]) -> RegistrationCredential:
    try:
        credential = parse_registration_credential_json(data)
    except _PARSE_ERRORS as exc:
        raise _malformed(str(exc) or "unreadable") from exc
    _check_credential_id(credential.id, credential.raw_id)
    return credential


def parse_authentication_credential(data: dict[str, Any]) -> AuthenticationCredential:
    try:
        credential = parse_authentication_credential_json(data)
    except _PARSE_ERRORS as exc:
        raise _malformed(str(exc) or "unreadable") from exc
    _check_credential_id(credential.id, credential.raw_id)
    return credential


def user_handle_of(credential: AuthenticationCredential) -> bytes | None:
    return credential.response.user_handle or None


def _check_credential_id(credential_id: str, raw_id: bytes) -> None:
    if not raw_id or len(raw_id) > MAX_CREDENTIAL_ID_BYTES:
        raise _malformed("the credential id must be 1 to 1023 bytes")
    if bytes_to_base64url(raw_id) != credential_id:
        raise _malformed("id and rawId differ")


# --- the portal's own checks, in the order of the specification ------------------------------


def client_data_of(client_data_json: bytes) -> dict[str, Any]:
    """clientDataJSON as the specification reads it: UTF-8 (strictly: no other encoding, no
    invalid bytes), shallow, a JSON object. Every reader of client data goes through here."""
    try:
        text = client_data_json.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebAuthnRefused(
            "client_data_not_utf8", "The credential's client data is not UTF-8."
        ) from exc
    ensure_shallow(text, what="clientDataJSON")
    try:
        client_data = json.loads(text)
    except ValueError as exc:
        raise _malformed("clientDataJSON is not JSON") from exc
    if not isinstance(client_data, dict):
        raise _malformed("clientDataJSON is not an object")
    return client_data


def _check_client_data(client_data_json: bytes, *, expected_type: str, challenge: bytes) -> None:
    client_data = client_data_of(client_data_json)

    if client_data.get("type") != expected_type:
        raise WebAuthnRefused(
            "wrong_client_data_type", f"The client data type must be {expected_type}."
        )
    received = client_data.get("challenge")
    if not isinstance(received, str) or received != bytes_to_base64url(challenge):
        raise WebAuthnRefused("challenge_mismatch", "The credential answers another challenge.")
    if client_data.get("origin") not in accepted_origins():
        raise WebAuthnRefused("origin_not_allowed", "The credential was made on another origin.")
    cross_origin = client_data.get("crossOrigin", False)
    if cross_origin is not False:
        raise WebAuthnRefused(
            "cross_origin_refused", "The portal cannot be used from inside another site's frame."
        )
    if "topOrigin" in client_data:
        raise WebAuthnRefused(
            "cross_origin_refused", "The portal cannot be used from inside another site's frame."
        )


def client_data_challenge(client_data_json: bytes) -> bytes | None:
    """The challenge a clientDataJSON answers (None when it names none that decodes); the
    verify still compares it as the specification says."""
    value = client_data_of(client_data_json).get("challenge")
    if not isinstance(value, str):
        return None
    try:
        return base64url_to_bytes(value)
    except _PARSE_ERRORS:
        return None


def client_data_origin(client_data_json: bytes) -> str | None:
    """The origin a clientDataJSON names (None when it names none)."""
    value = client_data_of(client_data_json).get("origin")
    return value if isinstance(value, str) else None


def _parse_authenticator_data(authenticator_data: bytes) -> AuthenticatorData:
    try:
        return parse_authenticator_data(authenticator_data)
    except _PARSE_ERRORS as exc:
        raise _malformed("authenticatorData is unreadable") from exc


def _check_authenticator_data(parsed: AuthenticatorData) -> None:
    expected_rp_id_hash = hashlib.sha256(settings.PORTAL_RP_ID.encode()).digest()
    if parsed.rp_id_hash != expected_rp_id_hash:
        raise WebAuthnRefused("rp_id_mismatch", "The credential belongs to another site.")
    if not parsed.flags.up:
        raise WebAuthnRefused("user_presence_missing", "The authenticator saw no user presence.")
    if not parsed.flags.uv:
        raise WebAuthnRefused(
            "user_verification_missing", "The authenticator did not verify the user."
        )
    if parsed.flags.bs and not parsed.flags.be:
        raise _malformed("backed up but not backup eligible")


# --- ceremonies ------------------------------------------------------------------------------


def verify_registration(
    *, credential: RegistrationCredential, challenge: bytes
) -> VerifiedRegistration:
    """§7.1: check a new credential against the challenge the portal issued."""
    _check_client_data(
        credential.response.client_data_json, expected_type="webauthn.create", challenge=challenge
    )
    try:
        parsed = parse_attestation_object(credential.response.attestation_object).auth_data
    except _PARSE_ERRORS as exc:
        raise _malformed("attestationObject is unreadable") from exc
    _check_authenticator_data(parsed)
    attested = parsed.attested_credential_data
    if attested is None:
        raise _malformed("attestationObject holds no credential")
    _check_public_key(attested.credential_public_key)
    try:
        attestation = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.PORTAL_RP_ID,
            expected_origin=accepted_origins(),
            require_user_presence=True,
            require_user_verification=True,
            supported_pub_key_algs=SUPPORTED_ALGORITHMS,
        )
    except _PARSE_ERRORS as exc:
        raise WebAuthnRefused(
            "invalid_attestation", "The new passkey's attestation is invalid."
        ) from exc

    aaguid = uuid.UUID(attestation.aaguid)
    return VerifiedRegistration(
        credential_id=attestation.credential_id,
        public_key=attestation.credential_public_key,
        sign_count=attestation.sign_count,
        aaguid=None if aaguid.int == 0 else aaguid,
        transports=sorted({t.value for t in credential.response.transports or []}),
        backup_eligible=parsed.flags.be,
        backed_up=parsed.flags.bs,
    )


def _check_public_key(cose_key: bytes) -> None:
    try:
        public_key = decode_credential_public_key(cose_key)
    except _PARSE_ERRORS as exc:
        raise _malformed("the public key is unreadable") from exc
    if (
        not isinstance(public_key, DecodedEC2PublicKey)
        or public_key.alg != COSEAlgorithmIdentifier.ECDSA_SHA_256
        or public_key.crv != COSECRV.P256
    ):
        raise WebAuthnRefused("unsupported_algorithm", "Only P-256 (ES256) passkeys are accepted.")


def verify_assertion(
    *,
    credential: AuthenticationCredential,
    challenge: bytes,
    public_key: bytes,
    stored_sign_count: int,
) -> VerifiedAssertion:
    """§7.2: check an assertion by a known credential against the challenge the portal issued."""
    response = credential.response
    _check_client_data(response.client_data_json, expected_type="webauthn.get", challenge=challenge)
    parsed = _parse_authenticator_data(response.authenticator_data)
    _check_authenticator_data(parsed)
    try:
        # The counter is checked below, so that a clone is told apart from a bad signature.
        verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=settings.PORTAL_RP_ID,
            expected_origin=accepted_origins(),
            credential_public_key=public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
    except _PARSE_ERRORS as exc:
        raise WebAuthnRefused("invalid_signature", "The passkey's signature is invalid.") from exc

    received = parsed.sign_count
    if (received or stored_sign_count) and received <= stored_sign_count:
        raise CounterAnomaly(stored=stored_sign_count, received=received)
    return VerifiedAssertion(
        credential_id=credential.raw_id, sign_count=received, backed_up=parsed.flags.bs
    )
