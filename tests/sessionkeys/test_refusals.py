"""Every refusal of the session API and the relay: a 4xx with a stable code, nothing created,
nothing sent."""

from typing import Any

import pytest
from eth_account import Account
from rest_framework.test import APIClient

from chain.models import ChainOperation
from sessionkeys.models import RelayedOperation, Session
from tests.sessionkeys.conftest import DAPP, RECIPIENT, World

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

ERC20 = "0x00000000000000000000000000000000000C0FFE"


def erc7715(world: World, permission: dict[str, Any], **item: Any) -> list[dict[str, Any]]:
    return [
        {
            "chainId": hex(31337),
            "to": world.key.address,
            "permission": permission,
            "rules": [{"type": "expiry", "data": {"timestamp": world.now() + 3600}}],
            **item,
        }
    ]


def nothing_created(world: World) -> None:
    assert not Session.objects.exists()
    assert not ChainOperation.objects.filter(kind="create_session").exists()


@pytest.mark.parametrize(
    ("method", "params", "code", "rpc_code"),
    [
        ("eth_sign", {}, "unsupported_method", 4200),
        (
            "wallet_requestExecutionPermissions",
            "unknown-type",
            "unsupported_permission",
            -32602,
        ),
        ("wallet_requestExecutionPermissions", "bad-rule", "unsupported_rule", -32602),
        ("wallet_requestExecutionPermissions", "wrong-chain", "wrong_chain", -32602),
        ("wallet_requestExecutionPermissions", "no-recipient", "unsupported_permission", -32602),
        ("sso_createSession", "bad-address", "invalid_request", -32602),
        ("sso_createSession", "too-long", "session_too_long", None),
        ("sso_createSession", "too-soon", "session_expires_too_soon", None),
        ("sso_createSession", "unlimited-fees", "unlimited_fees", None),
    ],
)
def test_requests_that_cannot_become_a_session_are_refused(
    world: World, method: str, params: Any, code: str, rpc_code: int | None
) -> None:
    native = {"type": "native-token-allowance", "data": {"allowance": "0x10", "to": RECIPIENT}}
    cases: dict[str, Any] = {
        "unknown-type": erc7715(world, {"type": "native-token-stream", "data": {}}),
        "bad-rule": [{**erc7715(world, native)[0], "rules": [{"type": "rate-limit", "data": {}}]}],
        "wrong-chain": erc7715(world, native, chainId="0x1"),
        "no-recipient": erc7715(
            world, {"type": "native-token-allowance", "data": {"allowance": "0x10"}}
        ),
        "bad-address": world.sso_params(signer="0x1234"),
        "too-long": world.sso_params(expiresAt=world.now() + 40 * 86400),
        "too-soon": world.sso_params(expiresAt=world.now() + 100),
        "unlimited-fees": world.sso_params(feeLimit={"limitType": "unlimited"}),
    }
    body = cases.get(params, params) if isinstance(params, str) else params
    response = world.preview(body, method=method)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    if rpc_code is not None:
        assert response.json()["rpc_code"] == rpc_code
    nothing_created(world)


def test_a_proof_by_another_key_is_refused(world: World) -> None:
    params = world.sso_params()
    preview = world.preview(params).json()
    response = world.create(params, proof=world.proof(preview, key=Account.create()))
    assert (response.status_code, response.json()["code"]) == (400, "invalid_proof")
    nothing_created(world)


def test_a_malformed_proof_or_origin_is_refused(world: World) -> None:
    params = world.sso_params()
    bad_proof = world.client.post(
        "/api/v1/sessions",
        {"origin": DAPP, "method": "sso_createSession", "params": params, "proof": "0x12"},
        format="json",
    )
    assert (bad_proof.status_code, bad_proof.json()["code"]) == (400, "invalid_request")
    for origin in ("javascript:alert(1)", "http://dapp.example/path", "dapp.example", ""):
        response = world.client.post(
            "/api/v1/sessions/preview",
            {"origin": origin, "method": "sso_createSession", "params": params},
            format="json",
        )
        assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
    deep: Any = {}
    for _ in range(50):
        deep = {"a": deep}
    response = world.preview(deep)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_request")
    nothing_created(world)


def test_lockdown_refuses_new_sessions(world: World) -> None:
    from domains.services import set_lockdown

    set_lockdown(enabled=True, reason="registrar changed", actor=None, client=None)
    response = world.create(world.sso_params())
    assert (response.status_code, response.json()["code"]) == (423, "lockdown")
    nothing_created(world)


def test_people_without_a_deployed_account_or_a_login_are_refused(world: World) -> None:
    nobody = world.kit.user("nobody")
    client = APIClient()
    client.force_authenticate(nobody)
    response = client.post(
        "/api/v1/sessions/preview",
        {"origin": DAPP, "method": "sso_createSession", "params": world.sso_params()},
        format="json",
    )
    assert (response.status_code, response.json()["code"]) == (409, "account_not_deployed")
    anonymous = APIClient().post("/api/v1/sessions/preview", {}, format="json")
    assert anonymous.status_code in (401, 403)
    assert APIClient().get("/api/v1/sessions").status_code in (401, 403)


def test_a_session_cannot_be_created_twice_nor_seen_or_revoked_by_someone_else(
    world: World,
) -> None:
    params = world.sso_params()
    session = world.active_session(params)
    again = world.create(params)
    assert (again.status_code, again.json()["code"]) == (409, "session_exists")
    mallory = world.kit.user("mallory")
    client = APIClient()
    client.force_authenticate(mallory)
    assert client.get(f"/api/v1/sessions/{session['id']}").status_code == 404
    revoke = client.post(f"/api/v1/sessions/{session['id']}/revoke")
    assert revoke.status_code in (404, 409)


def test_a_pending_session_cannot_be_revoked_nor_used(world: World) -> None:
    created = world.create(world.sso_params()).json()
    revoke = world.client.post(f"/api/v1/sessions/{created['id']}/revoke")
    assert (revoke.status_code, revoke.json()["code"]) == (409, "session_not_revocable")
    session = world.client.get(f"/api/v1/sessions/{created['id']}").json()
    refused = world.prepare(session, value=1)
    assert (refused.status_code, refused.json()["code"]) == (422, "session_not_active")


# --- the relay ----------------------------------------------------------------------------------


def test_the_relay_refuses_each_broken_rule_before_sending(world: World, settings: Any) -> None:
    session = world.active_session(
        world.sso_params(
            callPolicies=[
                {
                    "target": ERC20,
                    "functionSignature": "transfer(address,uint256)",
                    "constraints": [
                        {"condition": "equal", "index": 0, "refValue": RECIPIENT},
                        {"condition": "lessOrEqual", "index": 1, "refValue": "100"},
                    ],
                }
            ]
        )
    )
    recipient_word = "000000000000000000000000" + RECIPIENT[2:].lower()
    transfer = "0xa9059cbb"
    cases: list[tuple[dict[str, Any], str]] = [
        (
            {"to": "0x000000000000000000000000000000000000dEaD", "value": 1},
            "transfer_policy_violated",
        ),
        ({"value": 1001}, "max_value_exceeded"),
        ({"to": ERC20, "data": "0x095ea7b3" + recipient_word + "00" * 32}, "call_policy_violated"),
        ({"to": ERC20, "data": transfer + recipient_word + f"{101:064x}"}, "condition_violated"),
        ({"to": ERC20, "data": transfer + recipient_word}, "invalid_data_length"),
        ({"data": "0x12"}, "invalid_data_length"),
    ]
    for call, code in cases:
        response = world.prepare(session, **call)
        assert response.status_code == 422, (call, response.content)
        assert response.json()["code"] == code, (call, response.json())
    settings.PORTAL_SESSION_RELAY_MAX_COST_WEI = 1
    budget = world.prepare(session, value=1)
    assert (budget.status_code, budget.json()["code"]) == (422, "relay_budget_exceeded")
    assert not RelayedOperation.objects.filter(operation__isnull=False).exists()
    assert not ChainOperation.objects.filter(kind="session_operation").exists()


def test_the_relay_counts_what_it_sponsored_against_the_fee_limit(world: World) -> None:
    probe = world.active_session()
    cost = int(
        RelayedOperation.objects.get(
            user_op_hash=world.prepare(probe, value=1).json()["userOpHash"]
        ).max_cost
    )
    world.key = Account.create()
    # Room for one sponsored operation (a little more for fee changes), not two.
    session = world.active_session(
        world.sso_params(feeLimit={"limitType": "lifetime", "limit": str(cost * 3 // 2)})
    )
    assert world.transfer(session, 1).status_code == 202
    second = world.transfer(session, 1)
    assert (second.status_code, second.json()["code"]) == (422, "fee_limit_exceeded")


def test_the_relay_refuses_forged_tampered_and_unprepared_operations(world: World) -> None:
    session = world.active_session()
    prepared = world.prepare(session, value=10).json()

    forged = world.send(world.sign(prepared, session, key=Account.create()))
    assert (forged.status_code, forged.json()["code"]) == (422, "invalid_signature")

    signed = world.sign(prepared, session)
    tampered = dict(signed, callData=signed["callData"][:-2] + "ff")
    response = world.send(tampered)
    assert (response.status_code, response.json()["code"]) == (422, "not_prepared")

    no_session = dict(signed, sender="0x000000000000000000000000000000000000dEaD")
    response = world.send(no_session)
    assert (response.status_code, response.json()["code"]) == (404, "session_not_found")

    response = world.send(dict(signed, signature="0x1234"))
    assert (response.status_code, response.json()["code"]) == (400, "not_a_session_operation")

    response = world.send({"sender": "nope"})
    assert (response.status_code, response.json()["code"]) == (400, "invalid_user_operation")

    assert not ChainOperation.objects.filter(kind="session_operation").exists()
    accepted = world.send(signed)
    assert accepted.status_code == 202, accepted.content
    again = world.send(signed)  # the same operation twice is one
    assert again.status_code == 202
    assert ChainOperation.objects.filter(kind="session_operation").count() == 1


def test_status_of_unknown_or_malformed_hashes(world: World) -> None:
    assert world.relay.get("/api/v1/sessions/operations/0x12").json()["code"] == "invalid_hash"
    unknown = world.relay.get("/api/v1/sessions/operations/0x" + "ab" * 32)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "operation_not_found")
    prepare = world.relay.post(
        "/api/v1/sessions/operations/prepare",
        {
            "account": world.account.address,
            "session_hash": "0x" + "00" * 32,
            "call": {"to": RECIPIENT},
        },
        format="json",
    )
    assert (prepare.status_code, prepare.json()["code"]) == (404, "session_not_found")


def test_the_relay_stops_at_the_paymasters_budget(world: World, settings: Any) -> None:
    session = world.active_session()
    signed = world.sign(world.prepare(session, value=1).json(), session)
    settings.CHAIN_PAYMASTER_GAS_PER_HOUR = 1  # what the session's approval reserved is over it
    refused = world.send(signed)
    assert (refused.status_code, refused.json()["code"]) == (429, "budget_exhausted")
    assert not ChainOperation.objects.filter(kind="session_operation").exists()

    settings.CHAIN_PAYMASTER_GAS_PER_HOUR = 10**12
    accepted = world.send(signed)
    assert accepted.status_code == 202, accepted.content
    operation = ChainOperation.objects.get(kind="session_operation")
    assert operation.reserved_gas > 0  # counted against the paymaster's budget from now on
