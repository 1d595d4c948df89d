"""Signing messages for dapps with a passkey (`POST /api/v1/signatures/options|verify`): the
signatures are checked by viem against anvil (ERC-1271 through ERC-7739 once deployed, ERC-6492
before), Sign-In with Ethereum included; every refusal is a 4xx with a stable code."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from eth_utils import to_checksum_address
from rest_framework.test import APIClient

from accounts.models import AuditEvent, SmartAccount
from chain.devtools import devnet
from chain.models import Deployment
from passkeys.models import Ceremony, Passkey, SignatureRequest
from tests.chain.conftest import PipelineKit, advance
from tests.chain.test_erc7739 import MAIL, with_domain
from tests.chain.viem import viem_verify

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

OPTIONS = "/api/v1/signatures/options"
VERIFY = "/api/v1/signatures/verify"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def siwe_message(*, address: str, chain_id: int, domain: str, nonce: str) -> str:
    """An EIP-4361 message, as a dapp writes it."""
    return (
        f"{domain} wants you to sign in with your Ethereum account:\n"
        f"{to_checksum_address(address)}\n\n"
        "Sign in to the demo dapp.\n\n"
        f"URI: https://{domain}/login\n"
        "Version: 1\n"
        f"Chain ID: {chain_id}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {timezone.now().strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
    )


def options(client: APIClient, **body: Any) -> Any:
    return client.post(OPTIONS, body, format="json")


def verify(client: APIClient, ceremony_id: str, credential: Any) -> Any:
    return client.post(
        VERIFY, {"ceremony_id": ceremony_id, "credential": credential}, format="json"
    )


def sign(kit: PipelineKit, client: APIClient, **body: Any) -> dict[str, Any]:
    """Ask for options, answer with the kit's authenticator, verify: the verify answer."""
    asked = options(client, **body)
    assert asked.status_code == 200, asked.content
    credential = kit.authenticator.get(asked.json()["publicKey"])
    verified = verify(client, asked.json()["ceremony_id"], credential)
    assert verified.status_code == 200, verified.content
    answer = dict(verified.json())
    assert answer["hash"] == asked.json()["request"]["hash"]
    return answer


def viem(anvil: devnet.Anvil, *checks: dict[str, Any]) -> list[bool]:
    from django.conf import settings

    return viem_verify(rpc_url=anvil.url, chain_id=settings.CHAIN_ID, checks=list(checks))


@pytest.fixture
def counterfactual(pipeline_kit: PipelineKit) -> tuple[Any, Any, Any]:
    """(user, passkey, account): an account opened at sign-up, its deployment not sent yet."""
    user = pipeline_kit.user("nadia")
    passkey = pipeline_kit.passkey(user)
    account, _deployment = pipeline_kit.deployment(user, passkey)
    return user, passkey, account


@pytest.fixture
def person(pipeline_kit: PipelineKit) -> tuple[Any, Any, Any]:
    return pipeline_kit.deployed_account("rosa")


def refused(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["code"] == code, response.content


# --------------------------------------------------------------------------- what verifiers see


def test_a_sign_in_message_verifies_before_and_after_deployment(
    pipeline_kit: PipelineKit,
    w3: Any,
    anvil: devnet.Anvil,
    counterfactual: tuple[Any, Any, Any],
) -> None:
    user, passkey, account = counterfactual
    client = client_for(user)
    chain_id = account.chain_id
    text = siwe_message(
        address=account.address, chain_id=chain_id, domain="dapp.example", nonce="abcdef12345"
    )
    before = sign(pipeline_kit, client, kind="personal_sign", message=text)
    assert before["erc6492"] is True and before["signature"].endswith("6492" * 16)
    assert before["account"] == account.address and before["kind"] == "personal_sign"
    assert w3.eth.get_code(account.address) == b""

    def checks(signature: str) -> list[dict[str, Any]]:
        address = account.address
        return [
            {"kind": "message", "address": address, "message": text, "signature": signature},
            {
                "kind": "siwe",
                "address": address,
                "message": text,
                "domain": "dapp.example",
                "nonce": "abcdef12345",
                "signature": signature,
            },
            # Another dapp's domain, or another nonce: refused.
            {
                "kind": "siwe",
                "address": address,
                "message": text,
                "domain": "evil.example",
                "nonce": "abcdef12345",
                "signature": signature,
            },
            {
                "kind": "siwe",
                "address": address,
                "message": text.replace("abcdef12345", "abcdef99999"),
                "domain": "dapp.example",
                "nonce": "abcdef99999",
                "signature": signature,
            },
        ]

    assert viem(anvil, *checks(before["signature"])) == [True, True, False, False]

    status = advance(account.deployment_id, until="confirmed")
    assert status == "confirmed"
    pipeline_kit.mark_deployed(account, passkey)
    assert w3.eth.get_code(account.address) != b""
    after = sign(pipeline_kit, client, kind="personal_sign", message=text)
    assert after["erc6492"] is False and not after["signature"].endswith("6492" * 16)
    assert viem(anvil, *checks(after["signature"])) == [True, True, False, False]
    # The signature made before deployment still verifies.
    assert viem(anvil, *checks(before["signature"])[:2]) == [True, True]

    events = AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.MESSAGE_SIGNED)
    assert [e.details["erc6492"] for e in events.order_by("pk")] == [True, False]
    assert events.first().details["hash"] == after["hash"]  # type: ignore[union-attr]


def test_typed_data_verifies_for_its_account_and_app_only(
    pipeline_kit: PipelineKit, anvil: devnet.Anvil, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    _other_user, _other_passkey, other_account = pipeline_kit.deployed_account("mallory")
    signed = sign(pipeline_kit, client_for(user), kind="typed_data", typed_data=MAIL)
    assert signed["erc6492"] is False and signed["kind"] == "typed_data"
    signature = signed["signature"]
    changed = {**MAIL, "message": {**MAIL["message"], "contents": "Pay Eve"}}
    assert viem(
        anvil,
        {
            "kind": "typed_data",
            "address": account.address,
            "typed_data": MAIL,
            "signature": signature,
        },
        # Replayed for another account, for another app's domain, or for other contents.
        {
            "kind": "typed_data",
            "address": other_account.address,
            "typed_data": MAIL,
            "signature": signature,
        },
        {
            "kind": "typed_data",
            "address": account.address,
            "typed_data": with_domain(MAIL, name="Other Mail"),
            "signature": signature,
        },
        {
            "kind": "typed_data",
            "address": account.address,
            "typed_data": with_domain(MAIL, verifyingContract="0x" + "11" * 20),
            "signature": signature,
        },
        {
            "kind": "typed_data",
            "address": account.address,
            "typed_data": changed,
            "signature": signature,
        },
    ) == [True, False, False, False, False]


def test_a_personal_message_is_refused_for_another_account(
    pipeline_kit: PipelineKit, anvil: devnet.Anvil, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    _other_user, _other_passkey, other_account = pipeline_kit.deployed_account("mallory")
    signed = sign(pipeline_kit, client_for(user), kind="personal_sign", raw="0x00ff10")
    signature = signed["signature"]
    assert viem(
        anvil,
        {"kind": "message", "address": account.address, "raw": "0x00ff10", "signature": signature},
        {
            "kind": "message",
            "address": other_account.address,
            "raw": "0x00ff10",
            "signature": signature,
        },
    ) == [True, False]


# --------------------------------------------------------------------------- refusals: options


def test_options_need_a_signed_in_person(pipeline_kit: PipelineKit) -> None:
    response = APIClient().post(OPTIONS, {"kind": "personal_sign", "message": "hi"}, format="json")
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"


def test_options_need_a_smart_account(pipeline_kit: PipelineKit) -> None:
    user = pipeline_kit.user("nobody")
    pipeline_kit.passkey(user)
    refused(options(client_for(user), kind="personal_sign", message="hi"), 404, "account_not_found")
    assert not Ceremony.objects.filter(user=user).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"kind": "eth_sign", "message": "hi"},
        {"kind": "personal_sign"},
        {"kind": "personal_sign", "message": "hi", "raw": "0x00"},
        {"kind": "personal_sign", "message": 5},
        {"kind": "personal_sign", "raw": "0x0"},
        {"kind": "personal_sign", "raw": "0x 00"},
        {"kind": "personal_sign", "raw": "00"},
        {"kind": "personal_sign", "typed_data": MAIL},
        {"kind": "typed_data", "message": "hi"},
        {"kind": "typed_data", "typed_data": "not an object"},
        {"kind": "typed_data", "typed_data": MAIL, "message": "hi"},
    ],
)
def test_malformed_requests_are_refused(
    counterfactual: tuple[Any, Any, Any], body: dict[str, Any]
) -> None:
    user, _passkey, _account = counterfactual
    refused(options(client_for(user), **body), 400, "invalid_request")
    assert not Ceremony.objects.filter(user=user).exists()


def _types_with(**types: Any) -> dict[str, Any]:
    return {**MAIL, "types": {**MAIL["types"], **types}}


@pytest.mark.parametrize(
    ("typed_data", "code"),
    [
        ({**MAIL, "message": {**MAIL["message"], "amounts": ["lots"]}}, "invalid_typed_data"),
        ({**MAIL, "message": {**MAIL["message"], "extra": 1}}, "invalid_typed_data"),
        (
            {**MAIL, "message": {k: v for k, v in MAIL["message"].items() if k != "to"}},
            "invalid_typed_data",
        ),
        ({**MAIL, "message": {**MAIL["message"], "from": "Cow"}}, "invalid_typed_data"),
        (_types_with(Mail=[{"name": "x", "type": "Unknown"}]), "invalid_typed_data"),
        (_types_with(Mail="nothing"), "invalid_typed_data"),
        ({**MAIL, "domain": {**MAIL["domain"], "colour": "blue"}}, "invalid_typed_data"),
        ({**MAIL, "primaryType": 7}, "invalid_typed_data"),
        (with_domain(MAIL, chainId=1), "chain_mismatch"),
        (with_domain(MAIL, chainId="0x1"), "chain_mismatch"),
        (with_domain(MAIL, chainId="thirty"), "invalid_typed_data"),
        ({**MAIL, "extra": True}, "invalid_typed_data"),
        ({k: v for k, v in MAIL.items() if k != "message"}, "invalid_typed_data"),
        (
            {
                **MAIL,
                "types": {**MAIL["types"], "Loop": [{"name": "x", "type": "Loop"}]},
                "primaryType": "Loop",
                "message": {"x": {"x": 1}},
            },
            "invalid_typed_data",
        ),
        ({**MAIL, "primaryType": "Nobody"}, "unsupported_typed_data"),
        ({**MAIL, "primaryType": "EIP712Domain"}, "unsupported_typed_data"),
        (
            {
                **MAIL,
                "types": {
                    "EIP712Domain": MAIL["types"]["EIP712Domain"],
                    "Person": MAIL["types"]["Person"],
                    "mail": MAIL["types"]["Mail"],
                },
                "primaryType": "mail",
            },
            "unsupported_typed_data",
        ),
    ],
    ids=[
        "bad-uint",
        "extra-member",
        "missing-member",
        "struct-not-object",
        "unknown-type",
        "type-not-list",
        "bad-domain-key",
        "primary-not-string",
        "other-chain",
        "other-chain-hex",
        "chain-not-a-number",
        "extra-key",
        "no-message",
        "bad-nested",
        "primary-undefined",
        "primary-is-domain",
        "lowercase-primary",
    ],
)
def test_typed_data_that_cannot_be_signed_is_refused(
    counterfactual: tuple[Any, Any, Any], typed_data: dict[str, Any], code: str
) -> None:
    user, _passkey, _account = counterfactual
    refused(options(client_for(user), kind="typed_data", typed_data=typed_data), 400, code)
    assert not Ceremony.objects.filter(user=user).exists()


def test_options_need_the_portals_contracts(counterfactual: tuple[Any, Any, Any]) -> None:
    user, _passkey, _account = counterfactual
    Deployment.objects.filter(name="MSAFactory").delete()
    refused(
        options(client_for(user), kind="personal_sign", message="hi"), 409, "chain_not_configured"
    )
    assert not SignatureRequest.objects.exists()


def test_a_deployed_account_without_a_passkey_on_chain_cannot_sign(
    person: tuple[Any, Any, Any],
) -> None:
    user, passkey, _account = person
    Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.PENDING)
    refused(
        options(client_for(user), kind="personal_sign", message="hi"), 409, "no_signing_passkey"
    )
    assert not SignatureRequest.objects.exists()


def test_options_offer_only_the_passkeys_that_can_sign(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    """Before deployment, the sign-up passkey (the one the deployment installs); after, those
    active on chain."""
    user, passkey, account = counterfactual
    pipeline_kit.passkey(user)  # a second one, not on chain
    client = client_for(user)

    def offered() -> list[str]:
        asked = options(client, kind="personal_sign", message="hi")
        assert asked.status_code == 200, asked.content
        return [c["id"] for c in asked.json()["publicKey"]["allowCredentials"]]

    from chain.devtools.authenticator import b64url

    assert offered() == [b64url(bytes(passkey.credential_id))]
    SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.DEPLOYED)
    Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.ACTIVE)
    assert offered() == [b64url(bytes(passkey.credential_id))]


# --------------------------------------------------------------------------- refusals: verify


def _asked(client: APIClient, **body: Any) -> dict[str, Any]:
    body = body or {"kind": "personal_sign", "message": "hello"}
    response = options(client, **body)
    assert response.status_code == 200, response.content
    return dict(response.json())


def _refusals(user: Any) -> list[str]:
    return [
        e.details["reason"]
        for e in AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.MESSAGE_REFUSED)
    ]


def _nothing_signed(user: Any) -> None:
    assert not SignatureRequest.objects.filter(signed_at__isnull=False).exists()
    assert not AuditEvent.objects.filter(user=user, kind=AuditEvent.Kind.MESSAGE_SIGNED).exists()


def test_verify_refuses_an_unknown_used_or_expired_ceremony(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    client = client_for(user)
    asked = _asked(client)
    credential = pipeline_kit.authenticator.get(asked["publicKey"])
    refused(verify(client, str(uuid.uuid4()), credential), 404, "ceremony_not_found")
    assert verify(client, asked["ceremony_id"], credential).status_code == 200
    refused(verify(client, asked["ceremony_id"], credential), 409, "ceremony_used")

    late = _asked(client)
    Ceremony.objects.filter(ceremony_id=late["ceremony_id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    credential = pipeline_kit.authenticator.get(late["publicKey"])
    refused(verify(client, late["ceremony_id"], credential), 410, "ceremony_expired")
    assert SignatureRequest.objects.filter(signed_at__isnull=False).count() == 1


def test_verify_refuses_another_persons_ceremony(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    mallory = pipeline_kit.user("mallory")
    asked = _asked(client_for(user))
    credential = pipeline_kit.authenticator.get(asked["publicKey"])
    refused(
        verify(client_for(mallory), asked["ceremony_id"], credential), 404, "ceremony_not_found"
    )
    # Not used up by the stranger: its owner can still sign.
    assert verify(client_for(user), asked["ceremony_id"], credential).status_code == 200


def test_verify_refuses_an_assertion_over_another_message(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    client = client_for(user)
    target = _asked(client)
    other = _asked(client, kind="personal_sign", message="something else")
    credential = pipeline_kit.authenticator.get(other["publicKey"])
    refused(verify(client, target["ceremony_id"], credential), 400, "challenge_mismatch")
    _nothing_signed(user)
    assert _refusals(user) == ["challenge_mismatch"]


def test_verify_refuses_a_passkey_that_cannot_sign_for_the_account(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    """Before deployment only the installed passkey; after, only those active on chain."""
    user, passkey, account = counterfactual
    second = pipeline_kit.passkey(user)
    client = client_for(user)
    asked = _asked(client)
    credential = pipeline_kit.authenticator.get(
        asked["publicKey"], credential_id=bytes(second.credential_id)
    )
    refused(verify(client, asked["ceremony_id"], credential), 400, "passkey_not_on_chain")

    SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.DEPLOYED)
    Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.ACTIVE)
    asked = _asked(client)
    credential = pipeline_kit.authenticator.get(
        asked["publicKey"], credential_id=bytes(second.credential_id)
    )
    refused(verify(client, asked["ceremony_id"], credential), 400, "passkey_not_on_chain")
    _nothing_signed(user)
    assert _refusals(user) == ["passkey_not_on_chain", "passkey_not_on_chain"]


@override_settings(PORTAL_RELATED_ORIGINS=["https://other.example"])
def test_verify_refuses_an_origin_keys_are_not_bound_to(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    client = client_for(user)
    asked = _asked(client)
    credential = pipeline_kit.authenticator.get(asked["publicKey"], origin="https://other.example")
    refused(verify(client, asked["ceremony_id"], credential), 400, "origin_not_on_chain")
    _nothing_signed(user)


def test_verify_refuses_another_persons_passkey(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    mallory = pipeline_kit.user("mallory")
    mallory_passkey = pipeline_kit.passkey(mallory)
    client = client_for(user)
    asked = _asked(client)
    forged = pipeline_kit.authenticator.get(
        asked["publicKey"], credential_id=bytes(mallory_passkey.credential_id)
    )
    refused(verify(client, asked["ceremony_id"], forged), 400, "credential_not_allowed")
    _nothing_signed(user)


@pytest.mark.parametrize(
    ("credential", "code"),
    [
        ("not an object", "invalid_request"),
        ({}, "invalid_credential"),
        ({"id": "x", "rawId": "y", "type": "public-key", "response": {}}, "invalid_credential"),
        ("TAMPERED", "invalid_signature"),
        ("NO-UV", "user_verification_missing"),
    ],
)
def test_verify_refuses_a_malformed_or_forged_assertion(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any], credential: Any, code: str
) -> None:
    user, _passkey, _account = counterfactual
    client = client_for(user)
    asked = _asked(client)
    if credential == "TAMPERED":
        credential = pipeline_kit.authenticator.get(asked["publicKey"], tamper_signature=True)
    elif credential == "NO-UV":
        credential = pipeline_kit.authenticator.get(asked["publicKey"], user_verified=False)
    refused(verify(client, asked["ceremony_id"], credential), 400, code)
    _nothing_signed(user)


def test_verify_needs_a_signed_in_person(
    pipeline_kit: PipelineKit, counterfactual: tuple[Any, Any, Any]
) -> None:
    user, _passkey, _account = counterfactual
    asked = _asked(client_for(user))
    credential = pipeline_kit.authenticator.get(asked["publicKey"])
    response = APIClient().post(
        VERIFY, {"ceremony_id": asked["ceremony_id"], "credential": credential}, format="json"
    )
    assert response.status_code in (401, 403)
    assert response.json()["code"] == "not_authenticated"
    _nothing_signed(user)
