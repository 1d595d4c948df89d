"""A connected dapp's calls on anvil: the review (decoded calls, the simulation's balance changes
and revert reason, flags), a two-call batch approved with a passkey and confirmed through the
pipeline, and its EIP-5792 status with the receipt."""

from pathlib import Path
from typing import Any

import pytest
from eth_utils import keccak
from web3 import Web3
from web3.contract import Contract

from accounts.models import AuditEvent
from chain import userops
from chain.client import Sender, account_from_key
from chain.devtools import compiler
from chain.devtools.devkit import ANVIL_KEYS
from chain.models import ChainOperation
from sessionkeys.models import CallBundle
from tests.chain.conftest import advance
from tests.sessionkeys.conftest import DAPP, RECIPIENT, World

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

BEEF = Web3.to_checksum_address(RECIPIENT)
TRANSFER = "0x" + keccak(text="transfer(address,uint256)")[:4].hex()


@pytest.fixture(scope="session")
def token_artifact() -> dict[str, Any]:
    path = Path(__file__).parent / "contracts" / "DappMocks.sol"
    units = {"tests/sessionkeys/contracts/DappMocks.sol": path.read_text()}
    return next(a.data for a in compiler.compile_sources(units) if a.name == "PlainToken")


@pytest.fixture
def token(world: World, token_artifact: dict[str, Any]) -> Contract:
    sender = Sender(w3=world.w3, account=account_from_key(ANVIL_KEYS[0]))
    receipt = sender.send(data=bytes.fromhex(token_artifact["bytecode"][2:]))
    address = Web3.to_checksum_address(str(receipt["contractAddress"]))
    contract = world.w3.eth.contract(address=address, abi=token_artifact["abi"])
    sender.send(to=address, data=contract.encode_abi("mint", args=[world.account.address, 500]))
    return contract


@pytest.fixture
def connected(world: World) -> World:
    answer = world.client.post("/api/v1/dapps/connect", {"origin": DAPP}, format="json")
    assert answer.status_code == 200, answer.content
    return world


def preview(world: World, calls: list[dict[str, Any]]) -> Any:
    return world.client.post(
        "/api/v1/dapps/calls/preview", {"origin": DAPP, "calls": calls}, format="json"
    )


def token_transfer(token: Contract, to: str, amount: int) -> dict[str, Any]:
    return {"to": token.address, "data": token.encode_abi("transfer", args=[to, amount])}


def codes(review: dict[str, Any]) -> set[str]:
    return {flag["code"] for flag in review["flags"]}


def test_a_plain_eth_transfer_shows_the_balance_change(connected: World) -> None:
    world = connected
    before = world.w3.eth.get_balance(BEEF)
    answer = preview(world, [{"to": RECIPIENT, "value": "1000"}])
    assert answer.status_code == 200, answer.content
    review = answer.json()["review"]
    assert review["origin"] == DAPP
    assert review["calls"] == [
        {
            "target": BEEF,
            "value": "1000",
            "value_eth": "0.000000000000001",
            "data": "0x",
            "selector": None,
            "function": None,
            "arguments": None,
        }
    ]
    assert review["simulation"] == {
        "success": True,
        "revert_reason": None,
        "balance_change": {"native": "-1000", "tokens": []},
    }
    # Nothing was approved for this dapp yet: the person is warned.
    assert review["origin_seen"] is False
    assert "new_origin" in codes(review)
    # A preview changes nothing on chain.
    assert world.w3.eth.get_balance(BEEF) == before


def test_a_token_transfer_is_decoded_with_its_token_change(
    connected: World, token: Contract
) -> None:
    review = preview(connected, [token_transfer(token, RECIPIENT, 200)]).json()["review"]
    call = review["calls"][0]
    assert (call["selector"], call["function"]) == (TRANSFER, "transfer(address,uint256)")
    assert call["arguments"] == [BEEF, "200"]
    assert review["simulation"]["balance_change"] == {
        "native": "0",
        "tokens": [{"token": token.address, "change": "-200"}],
    }


def test_a_reverting_call_shows_the_failure_and_its_reason(
    connected: World, token: Contract
) -> None:
    review = preview(connected, [token_transfer(token, RECIPIENT, 10**6)]).json()["review"]
    assert review["simulation"]["success"] is False
    assert review["simulation"]["revert_reason"] == "balance too low"
    assert review["simulation"]["balance_change"] is None
    assert "simulation_failed" in codes(review)


def test_more_value_than_the_balance_and_calls_to_the_account_are_flagged(
    connected: World,
) -> None:
    world = connected
    review = preview(world, [{"to": RECIPIENT, "value": hex(2 * 10**18)}]).json()["review"]
    assert {"value_exceeds_balance", "simulation_failed"} <= codes(review)
    itself = preview(world, [{"to": world.account.address, "data": "0x"}]).json()["review"]
    assert {"calls_account", "ownership_change"} <= codes(itself)
    flagged = {flag["code"]: flag["severity"] for flag in itself["flags"]}
    assert flagged["calls_account"] == "danger"


def test_an_allowance_is_flagged(connected: World) -> None:
    spender = Web3.to_checksum_address("0x00000000000000000000000000000000000a11ce")
    data = "0x095ea7b3" + bytes.fromhex(spender[2:]).rjust(32, b"\0").hex() + "ff" * 32
    review = preview(connected, [{"to": RECIPIENT, "data": data}]).json()["review"]
    assert review["calls"][0]["function"] == "approve(address,uint256)"
    assert review["calls"][0]["arguments"] == [spender, str(2**256 - 1)]
    assert "approval_call" in codes(review)


def test_a_two_call_batch_approved_with_a_passkey_is_confirmed_with_its_receipt(
    connected: World, token: Contract
) -> None:
    world = connected
    before = world.w3.eth.get_balance(BEEF)
    calls = [{"to": RECIPIENT, "value": "1000"}, token_transfer(token, RECIPIENT, 200)]
    created = world.client.post(
        "/api/v1/dapps/calls",
        {"origin": DAPP, "calls": calls, "idempotency_key": "batch-1"},
        format="json",
    )
    assert created.status_code == 201, created.content
    bundle_id = created.json()["id"]
    assert len(bundle_id) == 66 and bundle_id.startswith("0x")
    operation_id = created.json()["operation"]["id"]
    assert created.json()["operation"]["status"] == "awaiting_signature"
    operation = ChainOperation.objects.get(pk=operation_id)
    assert operation.kind == "dapp.calls" and DAPP in operation.label
    # Both calls in one execute (batch mode) of the account.
    assert operation.user_operation is not None
    call_data = bytes.fromhex(operation.user_operation["callData"][2:])
    assert call_data == userops.execute_batch_call_data(
        calls=[
            userops.Call(target=RECIPIENT, value=1000),
            userops.Call(target=token.address, data=bytes.fromhex(calls[1]["data"][2:])),
        ]
    )
    assert AuditEvent.objects.filter(kind="dapp_calls_requested", user=world.user).exists()

    pending = world.relay.get(f"/api/v1/dapps/calls/{bundle_id}")
    assert pending.status_code == 200
    assert pending["Access-Control-Allow-Origin"] == "*"
    assert (pending.json()["status"], pending.json()["receipts"]) == (100, [])

    world.approve(operation_id)
    assert world.w3.eth.get_balance(BEEF) == before + 1000
    assert token.functions.balanceOf(BEEF).call() == 200

    done = world.relay.get(f"/api/v1/dapps/calls/{bundle_id}").json()
    operation.refresh_from_db()
    assert done["version"] == "2.0.0" and done["id"] == bundle_id
    assert (done["chainId"], done["atomic"], done["status"]) == ("0x7a69", True, 200)
    assert done["operation"] == {"id": operation_id, "status": "confirmed"}
    (receipt,) = done["receipts"]
    assert receipt["status"] == "0x1"
    assert receipt["transactionHash"] == operation.tx_hash
    assert int(receipt["blockNumber"], 16) == operation.block_number
    assert int(receipt["gasUsed"], 16) > 0
    transfers = [log for log in receipt["logs"] if log["address"] == token.address]
    assert len(transfers) == 1
    assert transfers[0]["topics"][2] == "0x" + bytes.fromhex(BEEF[2:]).rjust(32, b"\0").hex()
    # Kept once final: the answer no longer needs the chain.
    assert CallBundle.objects.get(bundle_id=bundle_id).receipt == receipt

    # The dapp is now one the person approved something for.
    again = preview(world, [{"to": RECIPIENT, "value": "1"}]).json()["review"]
    assert again["origin_seen"] is True and "new_origin" not in codes(again)
    listed = world.client.get("/api/v1/dapps").json()
    assert listed[0]["allowed"]["call_bundles"] == 1


def test_one_call_is_a_single_execute(connected: World) -> None:
    created = connected.client.post(
        "/api/v1/dapps/calls",
        {"origin": DAPP, "calls": [{"to": RECIPIENT, "value": "0x5"}], "idempotency_key": "one"},
        format="json",
    )
    assert created.status_code == 201, created.content
    operation = ChainOperation.objects.get(pk=created.json()["operation"]["id"])
    assert operation.user_operation is not None
    assert bytes.fromhex(operation.user_operation["callData"][2:]) == userops.execute_call_data(
        target=RECIPIENT, value=5
    )


def test_approved_calls_that_revert_on_chain_show_status_500_with_the_receipt(
    connected: World, token: Contract
) -> None:
    world = connected
    created = world.client.post(
        "/api/v1/dapps/calls",
        {
            "origin": DAPP,
            "calls": [token_transfer(token, RECIPIENT, 10**6)],
            "idempotency_key": "x",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    operation_id = created.json()["operation"]["id"]
    options = world.client.post(f"/api/v1/operations/{operation_id}/options")
    credential = world.kit.authenticator.get(options.json()["publicKey"])
    signed = world.client.post(
        f"/api/v1/operations/{operation_id}/sign", {"credential": credential}, format="json"
    )
    assert signed.status_code == 200, signed.content
    assert advance(operation_id, until="failed") == "failed"
    status = world.relay.get(f"/api/v1/dapps/calls/{created.json()['id']}").json()
    # The user operation was included (the sponsor paid its gas) and its calls reverted.
    assert status["status"] == 500
    assert status["operation"] == {"id": operation_id, "status": "failed"}
    (receipt,) = status["receipts"]
    operation = ChainOperation.objects.get(pk=operation_id)
    assert receipt["status"] == "0x0"
    assert receipt["transactionHash"] == operation.tx_hash
    assert "balance too low" in operation.revert_reason
    assert token.functions.balanceOf(BEEF).call() == 0
