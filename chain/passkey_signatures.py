"""WebAuthn assertion → WebAuthnValidator signature (what goes in userOp.signature).

userOp.signature = validator address (20 bytes) ‖ payload, in one of the validator's two forms:

- compact, used whenever clientDataJSON is the serialisation browsers produce,
  `{"type":"webauthn.get","challenge":"<43 chars>","origin":"<origin>"[,"crossOrigin":false]}`:
  form (0x01, or 0x02 with `,"crossOrigin":false`) ‖ r ‖ s ‖ len(authenticatorData) (2 bytes)
  ‖ authenticatorData ‖ len(credentialId) (2 bytes) ‖ credentialId ‖ origin. The validator rebuilds
  that exact clientDataJSON from the signed hash and the origin (about 3,000 gas less calldata);
- ZKsync SSO's, for any other clientDataJSON (e.g. with extra members):
  abi.encode(bytes authenticatorData, string clientDataJSON, bytes32[2] [r, s], bytes credentialId).

- The DER ECDSA signature from the authenticator becomes (r, s); a high s (> N/2) is replaced by
  N - s, which verifies the same message, because the validator accepts low-s only.
- clientDataJSON is passed through as the exact bytes the browser produced and signed (or, in the
  compact form, left for the validator to rebuild byte for byte).
- The challenge the browser signs is the 32-byte userOpHash itself (base64url in clientDataJSON).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from eth_abi import encode
from eth_utils import to_checksum_address

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_HALF_N = P256_N // 2

COMPACT = 0x01
COMPACT_CROSS_ORIGIN_FALSE = 0x02
# The clientDataJSON the compact form stands for (browsers' serialisation for credentials.get).
CANONICAL_CLIENT_DATA = re.compile(
    rb'\{"type":"webauthn\.get","challenge":"[A-Za-z0-9_-]{43}","origin":"([^"\\]*)"'
    rb'(,"crossOrigin":false)?\}'
)


def der_to_rs(signature_der: bytes) -> tuple[int, int]:
    """(r, s) of a DER-encoded ECDSA signature."""
    r, s = decode_dss_signature(signature_der)
    if not (0 < r < P256_N and 0 < s < P256_N):
        raise ValueError("signature values out of range for P-256")
    return r, s


def normalise_s(s: int) -> tuple[int, bool]:
    """The low-s form of s and whether s was high."""
    if s > P256_HALF_N:
        return P256_N - s, True
    return s, False


def challenge_for(signed_hash: bytes) -> str:
    """The challenge string clientDataJSON carries for `signed_hash` (base64url, unpadded)."""
    return base64.urlsafe_b64encode(signed_hash).rstrip(b"=").decode()


@dataclass(frozen=True, kw_only=True)
class PasskeySignature:
    validator: str
    authenticator_data: bytes
    client_data_json: bytes
    r: int
    s: int
    credential_id: bytes
    was_high_s: bool

    @property
    def abi_payload(self) -> bytes:
        """The validator's part in ZKsync SSO's form (any clientDataJSON)."""
        return encode(
            ["bytes", "string", "bytes32[2]", "bytes"],
            [
                self.authenticator_data,
                self.client_data_json.decode("utf-8"),
                [self.r.to_bytes(32, "big"), self.s.to_bytes(32, "big")],
                self.credential_id,
            ],
        )

    @property
    def compact_payload(self) -> bytes | None:
        """The validator's part in the compact form, or None when clientDataJSON is not the
        browsers' usual serialisation (or a length does not fit in two bytes)."""
        match = CANONICAL_CLIENT_DATA.fullmatch(self.client_data_json)
        if match is None or max(len(self.authenticator_data), len(self.credential_id)) > 0xFFFF:
            return None
        form = COMPACT_CROSS_ORIGIN_FALSE if match.group(2) else COMPACT
        return (
            bytes([form])
            + self.r.to_bytes(32, "big")
            + self.s.to_bytes(32, "big")
            + len(self.authenticator_data).to_bytes(2, "big")
            + self.authenticator_data
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + match.group(1)
        )

    @property
    def payload(self) -> bytes:
        """The validator's part (after the 20-byte validator prefix): compact when possible."""
        compact = self.compact_payload
        return self.abi_payload if compact is None else compact

    @property
    def encoded(self) -> bytes:
        """userOp.signature (or ERC-1271 signature data): validator ‖ payload."""
        return bytes.fromhex(self.validator[2:]) + self.payload

    @property
    def encoded_abi(self) -> bytes:
        """validator ‖ payload in ZKsync SSO's form, whatever clientDataJSON is."""
        return bytes.fromhex(self.validator[2:]) + self.abi_payload


def passkey_signature(
    *,
    validator: str,
    authenticator_data: bytes,
    client_data_json: bytes | str,
    signature_der: bytes,
    credential_id: bytes,
) -> PasskeySignature:
    """Encode one WebAuthn assertion for WebAuthnValidator.

    `client_data_json` should be the raw bytes from the assertion response; a str is UTF-8 encoded.
    """
    r, s = der_to_rs(signature_der)
    s, was_high = normalise_s(s)
    raw_client_data = (
        client_data_json.encode("utf-8") if isinstance(client_data_json, str) else client_data_json
    )
    return PasskeySignature(
        validator=to_checksum_address(validator),
        authenticator_data=bytes(authenticator_data),
        client_data_json=bytes(raw_client_data),
        r=r,
        s=s,
        credential_id=bytes(credential_id),
        was_high_s=was_high,
    )


def public_key_from_cose(cose_key: bytes) -> tuple[int, int]:
    """(x, y) of an EC2 P-256 COSE public key (as stored from a WebAuthn registration)."""
    from webauthn.helpers.cose import COSECRV
    from webauthn.helpers.decode_credential_public_key import (
        DecodedEC2PublicKey,
        decode_credential_public_key,
    )

    decoded = decode_credential_public_key(cose_key)
    if not isinstance(decoded, DecodedEC2PublicKey) or decoded.crv != COSECRV.P256:
        raise ValueError("not an EC2 P-256 public key")
    return int.from_bytes(decoded.x, "big"), int.from_bytes(decoded.y, "big")
