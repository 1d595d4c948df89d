"""WebAuthn assertion → WebAuthnValidator signature (what goes in userOp.signature).

userOp.signature = validator address (20 bytes) ‖
    abi.encode(bytes authenticatorData, string clientDataJSON, bytes32[2] [r, s],
               bytes credentialId)

- The DER ECDSA signature from the authenticator becomes (r, s); a high s (> N/2) is replaced by
  N - s, which verifies the same message, because the validator accepts low-s only.
- clientDataJSON is passed through as the exact bytes the browser produced and signed.
- The challenge the browser signs is the 32-byte userOpHash itself (base64url in clientDataJSON).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from eth_abi import encode
from eth_utils import to_checksum_address

P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256_HALF_N = P256_N // 2


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
    def payload(self) -> bytes:
        """The validator's part (after the 20-byte validator prefix)."""
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
    def encoded(self) -> bytes:
        """userOp.signature (or ERC-1271 signature data): validator ‖ payload."""
        return bytes.fromhex(self.validator[2:]) + self.payload


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
