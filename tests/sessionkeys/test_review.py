"""What the approval screen is told: the most each token can lose, each function by name, the fee
limit, and the risk flags; ERC-7715 permissions mapped onto the spec; operators' presets."""

from typing import Any

import pytest
from eth_utils import to_checksum_address

from sessionkeys.models import SessionPreset
from tests.sessionkeys.conftest import RECIPIENT, World

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

TOKEN = str(to_checksum_address("0x00000000000000000000000000000000000c0ffe"))
DAY = 86400


def flags(review: dict[str, Any]) -> set[str]:
    return {flag["code"] for flag in review["flags"]}


def test_erc7715_permissions_become_a_spec_and_a_review(world: World) -> None:
    now = world.now()
    params = [
        {
            "chainId": "0x7a69",
            "to": world.key.address,
            "permission": {
                "type": "native-token-periodic",
                "data": {
                    "periodAmount": "0x2386f26fc10000",
                    "periodDuration": DAY,
                    "to": RECIPIENT,
                },
            },
            "rules": [{"type": "expiry", "data": {"timestamp": now + 3 * DAY}}],
        },
        {
            "chainId": "0x7a69",
            "to": world.key.address,
            "permission": {
                "type": "erc20-token-allowance",
                "data": {"tokenAddress": TOKEN, "allowance": "5000"},
            },
            "rules": [{"type": "expiry", "data": {"timestamp": now + 2 * DAY}}],
        },
    ]
    preview = world.preview(params, method="wallet_requestExecutionPermissions")
    assert preview.status_code == 200, preview.content
    body = preview.json()
    spec = body["spec"]
    assert spec["expiresAt"] == now + 2 * DAY  # the earliest expiry
    assert spec["transferPolicies"][0]["valueLimit"]["limitType"] == "allowance"
    assert spec["callPolicies"][0]["selector"] == "0xa9059cbb"
    review = body["review"]
    spend = {item["token"]: item["amount"] for item in review["maximum_spend"]}
    # 0.01 ETH a day over two days (three started periods at most, capped by the expiry).
    assert int(spend["native"]) in (2 * 10**16, 3 * 10**16)
    assert spend[TOKEN] == "5000"
    assert review["calls"][0]["function"] == "transfer(address,uint256)"
    assert review["origin_seen"] is False
    assert "new_origin" in flags(review)
    assert "long_expiry" not in flags(review)
    assert body["proof_digest"].startswith("0x") and len(body["context"]) > 66


def test_risky_requests_are_flagged(world: World, settings: Any) -> None:
    settings.PORTAL_SESSION_LONG_SECONDS = DAY
    params = world.sso_params(
        expiresAt=world.now() + 3 * DAY,
        callPolicies=[
            {"target": TOKEN, "functionSignature": "approve(address,uint256)"},
            {"target": TOKEN, "selector": "0xa22cb465"},  # setApprovalForAll
            {"target": world.account.address, "selector": "0xdeadbeef"},
            {"target": TOKEN, "selector": "0xa9059cbb", "maxValuePerUse": "1"},
        ],
        transferPolicies=[{"target": RECIPIENT, "maxValuePerUse": "5"}],
    )
    review = world.preview(params).json()["review"]
    found = flags(review)
    assert {"approval_call", "unlimited_amount", "long_expiry", "targets_account"} <= found
    approvals = [f for f in review["flags"] if f["code"] == "approval_call"]
    assert len(approvals) == 2
    unknown = next(c for c in review["calls"] if c["selector"] == "0xdeadbeef")
    assert unknown["function"] == ""  # no ABI known: the selector is shown
    spend = {item["token"]: item["amount"] for item in review["maximum_spend"]}
    assert spend["native"] is None and spend[TOKEN] is None


def test_an_origin_seen_before_is_not_new_and_presets_match(world: World) -> None:
    world.active_session()
    SessionPreset.objects.create(
        name="game", native_per_period_wei=10**16, period_seconds=DAY, duration_seconds=7 * DAY
    )
    SessionPreset.objects.create(name="other dapp", origin="https://elsewhere.example")
    SessionPreset.objects.create(name="tiny", native_per_period_wei=1, duration_seconds=60)
    from eth_account import Account

    world.key = Account.create()
    params = world.sso_params(feeLimit={"limitType": "lifetime", "limit": str(10**15)})
    review = world.preview(params).json()["review"]
    assert review["origin_seen"] is True
    assert "new_origin" not in flags(review)
    assert review["presets"] == ["game"]
