"""The pure Python side: user-operation packing, signature encoding, sponsor data."""

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_abi import decode
from eth_account import Account
from eth_account.messages import encode_defunct

from chain import userops
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import ANVIL_KEYS
from chain.passkey_signatures import (
    P256_HALF_N,
    P256_N,
    challenge_for,
    der_to_rs,
    normalise_s,
    passkey_signature,
    public_key_from_cose,
)

VALIDATOR = "0x87acc1fc57497c0fa6780ac75b1a8a85a0ec51bf"


def test_normalise_s_keeps_low_and_flips_high() -> None:
    assert normalise_s(5) == (5, False)
    assert normalise_s(P256_HALF_N) == (P256_HALF_N, False)
    assert normalise_s(P256_HALF_N + 1) == (P256_N - P256_HALF_N - 1, True)


def test_der_to_rs_rejects_out_of_range_values() -> None:
    assert der_to_rs(encode_dss_signature(1, 2)) == (1, 2)
    with pytest.raises(ValueError, match="out of range"):
        der_to_rs(encode_dss_signature(P256_N, 2))


def test_passkey_signature_layout_and_high_s_normalisation() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    client_data = b'{"type":"webauthn.get","challenge":"x","origin":"https://a.example"}'
    authenticator_data = b"\x11" * 32 + b"\x05" + b"\0\0\0\1"
    der = key.sign(
        authenticator_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256())
    )
    r, s = der_to_rs(der)
    high = encode_dss_signature(r, s if s > P256_HALF_N else P256_N - s)
    encoded = passkey_signature(
        validator=VALIDATOR,
        authenticator_data=authenticator_data,
        client_data_json=client_data,
        signature_der=high,
        credential_id=b"c" * 16,
    )
    assert encoded.was_high_s and encoded.s <= P256_HALF_N and encoded.r == r
    assert encoded.encoded[:20] == bytes.fromhex(VALIDATOR[2:])
    auth, client, rs, credential = decode(
        ["bytes", "string", "bytes32[2]", "bytes"], encoded.encoded[20:]
    )
    assert (auth, client.encode(), credential) == (authenticator_data, client_data, b"c" * 16)
    assert [int.from_bytes(v, "big") for v in rs] == [r, encoded.s]


def test_client_data_json_is_kept_byte_for_byte() -> None:
    raw = b'{"type":"webauthn.get", "challenge":"\\u0041","origin":"https://a.example"}'
    encoded = passkey_signature(
        validator=VALIDATOR,
        authenticator_data=b"\0" * 37,
        client_data_json=raw,
        signature_der=encode_dss_signature(1, 1),
        credential_id=b"c" * 16,
    )
    assert decode(["bytes", "bytes", "bytes32[2]", "bytes"], encoded.payload)[1] == raw


@pytest.mark.parametrize("cross_origin", [b"", b',"crossOrigin":false'], ids=["absent", "false"])
def test_compact_form_for_the_browsers_client_data(cross_origin: bytes) -> None:
    challenge = challenge_for(bytes(range(32))).encode()
    client_data = (
        b'{"type":"webauthn.get","challenge":"'
        + challenge
        + b'","origin":"https://a.example:8443"'
        + cross_origin
        + b"}"
    )
    authenticator_data = b"\x11" * 32 + b"\x05" + b"\0\0\0\1"
    encoded = passkey_signature(
        validator=VALIDATOR,
        authenticator_data=authenticator_data,
        client_data_json=client_data,
        signature_der=encode_dss_signature(7, 9),
        credential_id=b"c" * 20,
    )
    form = 2 if cross_origin else 1
    assert (
        encoded.payload
        == encoded.compact_payload
        == (
            bytes([form])
            + (7).to_bytes(32, "big")
            + (9).to_bytes(32, "big")
            + b"\x00\x25"
            + authenticator_data
            + b"\x00\x14"
            + b"c" * 20
            + b"https://a.example:8443"
        )
    )
    assert encoded.encoded == bytes.fromhex(VALIDATOR[2:]) + encoded.payload
    assert encoded.encoded_abi == bytes.fromhex(VALIDATOR[2:]) + encoded.abi_payload
    assert decode(["bytes", "string", "bytes32[2]", "bytes"], encoded.abi_payload)[1] == (
        client_data.decode()
    )


@pytest.mark.parametrize(
    "client_data",
    [
        b'{"type":"webauthn.get","challenge":"CHALLENGE","origin":"https://a.example",'
        b'"other_keys_can_be_added_here":"x"}',
        b'{"challenge":"CHALLENGE","type":"webauthn.get","origin":"https://a.example"}',
        b'{"type":"webauthn.get","challenge":"CHALLENGE","origin":"https:\\/\\/a.example"}',
        b'{"type":"webauthn.get","challenge":"CHALLENGE","origin":"https://a.example",'
        b'"crossOrigin":true}',
        b'{"type":"webauthn.create","challenge":"CHALLENGE","origin":"https://a.example"}',
        b'{"type":"webauthn.get","challenge":"CHALLENGE","origin":"https://a.example"} ',
        b'{"type":"webauthn.get","challenge":"CHALLENG","origin":"https://a.example"}',
    ],
    ids=["extra-member", "other-order", "escaped", "cross-origin", "create", "space", "short"],
)
def test_other_client_data_keeps_the_abi_form(client_data: bytes) -> None:
    challenge = challenge_for(bytes(range(32))).encode()
    client_data = client_data.replace(b"CHALLENGE", challenge)
    encoded = passkey_signature(
        validator=VALIDATOR,
        authenticator_data=b"\0" * 37,
        client_data_json=client_data,
        signature_der=encode_dss_signature(1, 1),
        credential_id=b"c" * 16,
    )
    assert encoded.compact_payload is None
    assert encoded.payload == encoded.abi_payload
    assert encoded.encoded == encoded.encoded_abi


def test_challenge_is_unpadded_base64url() -> None:
    digest = bytes(range(32))
    assert challenge_for(digest) == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert len(challenge_for(digest)) == 43


def test_public_key_from_cose() -> None:
    import cbor2

    passkey = SoftwarePasskey(origin="https://a.example")
    x, y = passkey.public_key
    cose = cbor2.dumps({1: 2, 3: -7, -1: 1, -2: x.to_bytes(32, "big"), -3: y.to_bytes(32, "big")})
    assert public_key_from_cose(cose) == (x, y)


def test_user_operation_packing() -> None:
    op = userops.build_user_operation(
        sender=VALIDATOR,
        nonce=userops.nonce(key=3, sequence=9),
        call_data=b"\x01",
        verification_gas_limit=1,
        call_gas_limit=2,
        pre_verification_gas=3,
        max_fee_per_gas=4,
        max_priority_fee_per_gas=5,
    )
    assert op.sender == "0x87acC1FC57497c0Fa6780ac75B1A8a85a0ec51bF"
    assert (op.verification_gas_limit, op.call_gas_limit) == (1, 2)
    assert (op.max_priority_fee_per_gas, op.max_fee_per_gas) == (5, 4)
    assert op.nonce >> 64 == 3 and op.nonce & (2**64 - 1) == 9
    with pytest.raises(ValueError, match="uint128"):
        userops.pack_uint128_pair(2**128, 0)


def test_sponsor_data_layout_and_signature() -> None:
    op = userops.PackedUserOperation(sender=VALIDATOR, nonce=0, call_data=b"\x01")
    paymaster = "0x1c165cf44ce9067a630267f22e7096e2dc3b5406"
    sponsored = userops.sponsor_user_operation(
        op,
        paymaster=paymaster,
        sponsor_key=ANVIL_KEYS[1],
        chain_id=31337,
        valid_until=1000,
        valid_after=10,
    )
    data = sponsored.paymaster_and_data
    assert data[:20] == bytes.fromhex(paymaster[2:])
    assert int.from_bytes(data[52:58], "big") == 1000 and int.from_bytes(data[58:64], "big") == 10
    # The cost cap: by default exactly what the operation's limits and fee allow.
    assert int.from_bytes(data[64:80], "big") == userops.required_prefund(sponsored)
    assert len(data) == 80 + 65
    digest = userops.sponsor_hash(
        sponsored,
        paymaster=paymaster,
        chain_id=31337,
        valid_until=1000,
        valid_after=10,
        max_cost=userops.required_prefund(sponsored),
    )
    signer = Account.recover_message(encode_defunct(primitive=digest), signature=data[80:])
    assert signer == Account.from_key(ANVIL_KEYS[1]).address


def test_required_prefund_counts_every_gas_limit() -> None:
    op = userops.build_user_operation(
        sender=VALIDATOR,
        nonce=0,
        call_data=b"",
        verification_gas_limit=1,
        call_gas_limit=2,
        pre_verification_gas=4,
        max_fee_per_gas=10,
        max_priority_fee_per_gas=1,
        paymaster_and_data=b"\x01" * 20 + userops.pack_uint128_pair(8, 16),
    )
    assert userops.required_prefund(op) == (1 + 2 + 4 + 8 + 16) * 10
    assert userops.required_prefund(op.with_changes(paymaster_and_data=b"")) == 7 * 10
