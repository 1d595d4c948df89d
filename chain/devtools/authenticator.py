"""The one software WebAuthn authenticator: real P-256 keys, real CBOR, real signatures.

`SoftwarePasskey` is one credential; it signs raw assertions (what the on-chain validator checks).
`SoftAuthenticator` holds credentials and answers the browser's JSON options with the JSON a
browser returns (what the portal's endpoints check). Every knob an attacker could turn is a
keyword argument, so that each refusal path is driven through the code path a real response takes.
Used by the tests, the benchmarks and the dev kit; never by the portal itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chain import userops
from chain.passkey_signatures import P256_N, challenge_for

FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_BE = 0x08
FLAG_BS = 0x10
FLAG_AT = 0x40

DEFAULT_ORIGIN = "http://localhost:8000"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def cose_p256(public_key: ec.EllipticCurvePublicKey) -> bytes:
    numbers = public_key.public_numbers()
    return cbor2.dumps(
        {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")}
    )


def authenticator_data(*, rp_id: str, flags: int, sign_count: int) -> bytes:
    return hashlib.sha256(rp_id.encode()).digest() + bytes([flags]) + struct.pack(">I", sign_count)


def client_data_json(
    *,
    client_type: str,
    challenge: str,
    origin: str,
    cross_origin: Any = False,
    top_origin: str | None = None,
    extra: dict[str, Any] | None = None,
    encoding: str = "utf-8",
) -> bytes:
    """clientDataJSON as browsers serialise it; `cross_origin=None` leaves the member out,
    `extra` adds members, `encoding` forges a non-UTF-8 one."""
    data: dict[str, Any] = {"type": client_type, "challenge": challenge, "origin": origin}
    if cross_origin is not None:
        data["crossOrigin"] = cross_origin
    if top_origin is not None:
        data["topOrigin"] = top_origin
    data.update(extra or {})
    return json.dumps(data, separators=(",", ":")).encode(encoding)


@dataclass
class Assertion:
    """The parts of a WebAuthn assertion that the on-chain validator checks."""

    authenticator_data: bytes
    client_data_json: bytes
    signature_der: bytes
    credential_id: bytes


@dataclass
class SoftwarePasskey:
    """One P-256 credential, bound to `origin` (where its assertions say they come from)."""

    origin: str = DEFAULT_ORIGIN
    rp_id: str = "localhost"
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    user_handle: bytes = b""
    sign_count: int = 0

    @property
    def public_key(self) -> tuple[int, int]:
        numbers = self.private_key.public_key().public_numbers()
        return numbers.x, numbers.y

    @property
    def cose_public_key(self) -> bytes:
        return cose_p256(self.private_key.public_key())

    def install_data(self) -> bytes:
        """WebAuthnValidator.onInstall's data holding this passkey for its origin."""
        return userops.webauthn_install_data(
            credential_id=self.credential_id, public_key=self.public_key, origin=self.origin
        )

    def assertion(
        self,
        challenge: bytes,
        *,
        origin: str | None = None,
        type_: str = "webauthn.get",
        cross_origin: bool | None = False,
        flags: int = FLAG_UP | FLAG_UV,
        high_s: bool = False,
    ) -> Assertion:
        """Sign `challenge` (a userOpHash) as an authenticator would; options forge the result.
        The signature is low-s unless `high_s`."""
        self.sign_count += 1
        auth_data = authenticator_data(rp_id=self.rp_id, flags=flags, sign_count=self.sign_count)
        client_data = client_data_json(
            client_type=type_,
            challenge=challenge_for(challenge),
            origin=origin or self.origin,
            cross_origin=cross_origin,
        )
        der = self.sign(auth_data + hashlib.sha256(client_data).digest())
        r, s = decode_dss_signature(der)
        want = P256_N - s if (s > P256_N // 2) != high_s else s
        return Assertion(
            authenticator_data=auth_data,
            client_data_json=client_data,
            signature_der=encode_dss_signature(r, want),
            credential_id=self.credential_id,
        )

    def sign(self, message: bytes) -> bytes:
        """An ECDSA P-256/SHA-256 signature (DER) over `message`, as the authenticator makes."""
        return self.private_key.sign(message, ec.ECDSA(hashes.SHA256()))


@dataclass
class SoftAuthenticator:
    """An authenticator holding software passkeys, answering WebAuthn JSON options."""

    rp_id: str = "localhost"
    origin: str = DEFAULT_ORIGIN
    aaguid: bytes = bytes(16)
    backup_eligible: bool = False
    backed_up: bool = False
    counts_signatures: bool = True
    # How clientDataJSON is encoded (browsers: UTF-8), and members added to it.
    client_data_encoding: str = "utf-8"
    client_data_extra: dict[str, Any] = field(default_factory=dict)
    # Rewrites clientDataJSON's bytes before they are signed (an attacker's forgery).
    tamper_client_data: Callable[[bytes], bytes] | None = None
    credentials: dict[bytes, SoftwarePasskey] = field(default_factory=dict)

    def add_credential(self, *, user_handle: bytes) -> SoftwarePasskey:
        """A new passkey for `user_handle`, as if created here earlier."""
        passkey = SoftwarePasskey(
            origin=self.origin,
            rp_id=self.rp_id,
            credential_id=secrets.token_bytes(16),
            user_handle=user_handle,
        )
        self.credentials[passkey.credential_id] = passkey
        return passkey

    # --- registration ------------------------------------------------------------------------

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        client_type: str = "webauthn.create",
        challenge: str | None = None,
        rp_id: str | None = None,
        user_present: bool = True,
        user_verified: bool = True,
        cross_origin: Any = False,
        top_origin: str | None = None,
        ed25519_key: bool = False,
        transports: tuple[str, ...] = ("hybrid", "internal"),
        reuse: bytes | None = None,
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialCreationOptionsJSON with RegistrationResponseJSON.

        `reuse` answers with an existing credential's id and key, as a replaying attacker would.
        """
        user_handle = unb64url(options["user"]["id"])
        if reuse is not None:
            passkey = self.credentials[reuse]
        else:
            passkey = self.add_credential(user_handle=user_handle)
        if ed25519_key:
            ed_public = ed25519.Ed25519PrivateKey.generate().public_key()
            raw = ed_public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            cose_key = cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})
        else:
            cose_key = passkey.cose_public_key
        credential_id = passkey.credential_id
        attested = self.aaguid + struct.pack(">H", len(credential_id)) + credential_id + cose_key
        auth_data = (
            self._authenticator_data(
                rp_id=rp_id,
                user_present=user_present,
                user_verified=user_verified,
                sign_count=0,
                extra_flags=FLAG_AT,
            )
            + attested
        )
        client_data = self._client_data(
            client_type=client_type,
            challenge=challenge or options["challenge"],
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
        )
        attestation_object = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": b64url(credential_id),
            "rawId": b64url(credential_id),
            "type": "public-key",
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation_object),
                "transports": list(transports),
            },
        }

    # --- authentication ----------------------------------------------------------------------

    def get(
        self,
        options: dict[str, Any],
        *,
        credential_id: bytes | None = None,
        origin: str | None = None,
        client_type: str = "webauthn.get",
        challenge: str | None = None,
        rp_id: str | None = None,
        user_present: bool = True,
        user_verified: bool = True,
        cross_origin: Any = False,
        top_origin: str | None = None,
        user_handle: bytes | bool | None = True,
        sign_count: int | None = None,
        tamper_signature: bool = False,
        signing_key: ec.EllipticCurvePrivateKey | None = None,
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialRequestOptionsJSON with AuthenticationResponseJSON.

        `user_handle=True` sends the credential's own handle, `None` sends none, bytes send those.
        """
        passkey = self._pick(options, credential_id)
        if sign_count is None:
            if self.counts_signatures:
                passkey.sign_count += 1
            sign_count = passkey.sign_count
        auth_data = self._authenticator_data(
            rp_id=rp_id,
            user_present=user_present,
            user_verified=user_verified,
            sign_count=sign_count,
        )
        client_data = self._client_data(
            client_type=client_type,
            challenge=challenge or options["challenge"],
            origin=origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
        )
        message = auth_data + hashlib.sha256(client_data).digest()
        if signing_key is not None:
            signature = signing_key.sign(message, ec.ECDSA(hashes.SHA256()))
        else:
            signature = passkey.sign(message)
        if tamper_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        handle = passkey.user_handle if user_handle is True else user_handle
        return {
            "id": b64url(passkey.credential_id),
            "rawId": b64url(passkey.credential_id),
            "type": "public-key",
            "clientExtensionResults": {},
            "authenticatorAttachment": "platform",
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(handle) if isinstance(handle, bytes) else None,
            },
        }

    def _pick(self, options: dict[str, Any], credential_id: bytes | None) -> SoftwarePasskey:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials") or []]
        for candidate in self.credentials.values():
            if not allowed or candidate.credential_id in allowed:
                return candidate
        raise LookupError("this authenticator holds none of the allowed credentials")

    def _client_data(
        self,
        *,
        client_type: str,
        challenge: str,
        origin: str | None,
        cross_origin: Any,
        top_origin: str | None,
    ) -> bytes:
        """clientDataJSON with this authenticator's encoding, extra members and tampering."""
        data = client_data_json(
            client_type=client_type,
            challenge=challenge,
            origin=origin or self.origin,
            cross_origin=cross_origin,
            top_origin=top_origin,
            extra=self.client_data_extra,
            encoding=self.client_data_encoding,
        )
        return self.tamper_client_data(data) if self.tamper_client_data is not None else data

    def _authenticator_data(
        self,
        *,
        rp_id: str | None,
        user_present: bool,
        user_verified: bool,
        sign_count: int,
        extra_flags: int = 0,
    ) -> bytes:
        flags = extra_flags
        flags |= FLAG_UP if user_present else 0
        flags |= FLAG_UV if user_verified else 0
        flags |= FLAG_BE if self.backup_eligible else 0
        flags |= FLAG_BS if self.backed_up else 0
        return authenticator_data(rp_id=rp_id or self.rp_id, flags=flags, sign_count=sign_count)
