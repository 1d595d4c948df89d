"""The recovery code's key derivation, written again in Python from its spec (recovery/codes.py)
so the tests play the browser's part: a code, its key, and EIP-712 signatures by that key."""

import hashlib
import hmac
import secrets
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base32
DOMAIN = b"passkey-portal/recovery-code/v1"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def new_code() -> str:
    value = secrets.randbits(160)
    chars = "".join(ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(32)))
    return "-".join(chars[i : i + 4] for i in range(0, 32, 4))


def normalize(code: str) -> str:
    text = code.upper().replace(" ", "").replace("-", "")
    return text.replace("I", "1").replace("L", "1").replace("O", "0")


def key_of(code: str) -> LocalAccount:
    normal = normalize(code)
    assert len(normal) == 32 and all(ch in ALPHABET for ch in normal), code
    digest = hmac.new(DOMAIN, normal.encode("ascii"), hashlib.sha256).digest()
    secret = int.from_bytes(digest, "big") % (SECP256K1_N - 1) + 1
    return Account.from_key(secret.to_bytes(32, "big"))


def sign(key: LocalAccount, typed_data: dict[str, Any]) -> str:
    message = encode_typed_data(
        domain_data=typed_data["domain"],
        message_types=typed_data["types"],
        message_data=typed_data["message"],
    )
    return "0x" + bytes(key.sign_message(message).signature).hex()
