"""A software WebAuthn authenticator for tests: real P-256 keys, real CBOR, real signatures.

Every knob an attacker could turn is a keyword argument, so that each refusal path can be driven
through the same code path a browser's response takes.
"""

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

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


@dataclass
class SoftCredential:
    credential_id: bytes
    private_key: ec.EllipticCurvePrivateKey
    user_handle: bytes
    sign_count: int = 0


@dataclass
class SoftAuthenticator:
    rp_id: str = "localhost"
    origin: str = DEFAULT_ORIGIN
    aaguid: bytes = bytes(16)
    backup_eligible: bool = False
    backed_up: bool = False
    counts_signatures: bool = True
    # How clientDataJSON is encoded (browsers: UTF-8), and members added to it.
    client_data_encoding: str = "utf-8"
    client_data_extra: dict[str, Any] = field(default_factory=dict)
    credentials: dict[bytes, SoftCredential] = field(default_factory=dict)

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
        if reuse is not None:
            credential_id, private_key = reuse, self.credentials[reuse].private_key
        else:
            credential_id = secrets.token_bytes(16)
            private_key = ec.generate_private_key(ec.SECP256R1())
        if ed25519_key:
            ed_public = ed25519.Ed25519PrivateKey.generate().public_key()
            raw = ed_public.public_bytes(Encoding.Raw, PublicFormat.Raw)
            cose_key = cbor2.dumps({1: 1, 3: -8, -1: 6, -2: raw})
        else:
            cose_key = cose_p256(private_key.public_key())
        user_handle = unb64url(options["user"]["id"])
        self.credentials.setdefault(
            credential_id, SoftCredential(credential_id, private_key, user_handle)
        )

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
        credential = self._pick(options, credential_id)
        if sign_count is None:
            if self.counts_signatures:
                credential.sign_count += 1
            sign_count = credential.sign_count
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
        key = signing_key or credential.private_key
        signature = key.sign(
            auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
        )
        if tamper_signature:
            signature = signature[:-1] + bytes([signature[-1] ^ 0x01])
        handle = credential.user_handle if user_handle is True else user_handle
        return {
            "id": b64url(credential.credential_id),
            "rawId": b64url(credential.credential_id),
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

    def _pick(self, options: dict[str, Any], credential_id: bytes | None) -> SoftCredential:
        if credential_id is not None:
            return self.credentials[credential_id]
        allowed = [unb64url(c["id"]) for c in options.get("allowCredentials") or []]
        for candidate in self.credentials.values():
            if not allowed or candidate.credential_id in allowed:
                return candidate
        raise LookupError("this authenticator holds none of the allowed credentials")

    # --- parts -------------------------------------------------------------------------------

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
        rp_id_hash = hashlib.sha256((rp_id or self.rp_id).encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", sign_count)

    def _client_data(
        self,
        *,
        client_type: str,
        challenge: str,
        origin: str | None,
        cross_origin: Any,
        top_origin: str | None,
    ) -> bytes:
        data: dict[str, Any] = {
            "type": client_type,
            "challenge": challenge,
            "origin": origin or self.origin,
        }
        if cross_origin is not None:
            data["crossOrigin"] = cross_origin
        if top_origin is not None:
            data["topOrigin"] = top_origin
        data.update(self.client_data_extra)
        return json.dumps(data, separators=(",", ":")).encode(self.client_data_encoding)
