"""The operation pipeline in-process on a real anvil and PostgreSQL: tasks' services called
directly, one step at a time, so that every state in between can be looked at."""

from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone
from eth_typing import HexStr
from rest_framework.test import APIClient
from web3 import Web3

from chain import userops
from chain.client import ChainUnavailable, entry_point, relayer_account
from chain.devtools import devnet
from chain.models import ChainOperation, RelayerAccount
from chain.pipeline.create import create_relayer_call
from chain.pipeline.submit import submit
from chain.pipeline.tick import tick
from chain.pipeline.track import track
from chain.signals import operation_changed
from passkeys.approvals import request_approval
from passkeys.models import Ceremony
from portal.errors import PortalError
from tests.chain.conftest import PipelineKit, advance

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status


def relayer_nonce(w3: Web3) -> int:
    return int(w3.eth.get_transaction_count(relayer_account().address, "latest"))


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def sign_through_api(kit: PipelineKit, user: Any, operation: ChainOperation) -> Any:
    client = client_for(user)
    options = client.post(f"/api/v1/operations/{operation.pk}/options")
    assert options.status_code == 200, options.content
    credential = kit.authenticator.get(options.json()["publicKey"])
    return client.post(
        f"/api/v1/operations/{operation.pk}/sign", {"credential": credential}, format="json"
    )


def test_deploying_an_account_goes_from_signed_to_confirmed(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    seen: list[str] = []

    def receiver(operations: list[ChainOperation], **_: Any) -> None:
        seen.extend(operation.status for operation in operations)

    operation_changed.connect(receiver)
    try:
        user = pipeline_kit.user("dora")
        passkey = pipeline_kit.passkey(user)
        account, operation = pipeline_kit.deployment(user, passkey)
        assert operation.status == Status.SIGNED
        assert operation.signed_at is not None
        before = relayer_nonce(w3)

        status = advance(operation.pk, until=Status.CONFIRMED)
    finally:
        operation_changed.disconnect(receiver)

    assert status == Status.CONFIRMED
    operation.refresh_from_db()
    assert seen == [Status.SUBMITTED, Status.INCLUDED, Status.CONFIRMED]
    assert operation.relayer == relayer_account().address
    assert operation.relayer_nonce == before
    assert operation.tx_hashes == [operation.tx_hash]
    assert operation.attempts == 1
    assert operation.submitted_at and operation.included_at and operation.confirmed_at
    assert operation.finished_at == operation.confirmed_at
    receipt = w3.eth.get_transaction_receipt(HexStr(operation.tx_hash))
    assert receipt["status"] == 1
    assert operation.block_number == receipt["blockNumber"]
    assert operation.block_hash == "0x" + bytes(receipt["blockHash"]).hex()
    assert relayer_nonce(w3) == before + 1
    assert RelayerAccount.objects.get().next_nonce == before + 1
    assert w3.eth.get_code(Web3.to_checksum_address(account.address)) != b""
    key = pipeline_kit.validator.functions.getAccountKey(
        settings.PORTAL_ORIGINS[0], bytes(passkey.credential_id), account.address
    ).call()
    assert any(int.from_bytes(part, "big") for part in key)


def test_a_passkey_signed_operation_is_confirmed_and_changes_the_account(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("erin")
    second = pipeline_kit.passkey(user)
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.add_key_call(second),
        idempotency_key=f"add-passkey:{second.pk}",
        details={"passkey_id": second.pk},
    )
    assert operation.status == Status.AWAITING_SIGNATURE
    ceremony = Ceremony.objects.get(operation=operation)
    assert ceremony.purpose == Ceremony.Purpose.OPERATION
    assert operation.expires_at == ceremony.expires_at
    assert bytes(ceremony.challenge).hex() == operation.user_op_hash[2:]
    # The portal's hash is the EntryPoint's.
    op = userops.user_operation_from_json(operation.user_operation or {})
    contract = entry_point(w3)
    assert "0x" + contract.functions.getUserOpHash(op.as_tuple()).call().hex() == (
        operation.user_op_hash
    )
    # A random 192-bit nonce key, its first sequence.
    assert op.nonce >> 64 and op.nonce & (2**64 - 1) == 0

    client = client_for(user)
    options = client.post(f"/api/v1/operations/{operation.pk}/options")
    assert options.status_code == 200
    body = options.json()
    assert body["operation"]["status"] == "awaiting_signature"
    public_key = body["publicKey"]
    assert public_key["challenge"] == userops_challenge(operation)
    # Only passkeys active on chain may approve: the new one is not yet.
    allowed = [c["id"] for c in public_key["allowCredentials"]]
    assert allowed == [b64url(bytes(_passkey.credential_id))]

    credential = pipeline_kit.authenticator.get(public_key)
    signed = client.post(
        f"/api/v1/operations/{operation.pk}/sign", {"credential": credential}, format="json"
    )
    assert signed.status_code == 200, signed.content
    assert signed.json()["status"] == "signed"
    assert signed.json()["account"] == account.address

    status = advance(operation.pk, until=Status.CONFIRMED)
    operation.refresh_from_db()
    assert status == Status.CONFIRMED, operation.revert_reason
    assert operation.revert_reason == ""
    key = pipeline_kit.validator.functions.getAccountKey(
        settings.PORTAL_ORIGINS[0], bytes(second.credential_id), account.address
    ).call()
    assert any(int.from_bytes(part, "big") for part in key)

    detail = client.get(f"/api/v1/operations/{operation.pk}").json()
    assert detail["status"] == "confirmed"
    assert detail["tx_hash"] == operation.tx_hash
    assert detail["block_number"] == operation.block_number
    assert set(detail) == {
        "id",
        "kind",
        "label",
        "status",
        "account",
        "passkey_id",
        "user_op_hash",
        "tx_hash",
        "block_number",
        "revert_reason",
        "error",
        "created_at",
        "updated_at",
        "signed_at",
        "submitted_at",
        "included_at",
        "confirmed_at",
        "expires_at",
    }


def b64url(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def userops_challenge(operation: ChainOperation) -> str:
    return b64url(bytes.fromhex(operation.user_op_hash[2:]))


def test_the_same_idempotency_key_gives_one_operation_and_one_transaction(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    user = pipeline_kit.user("finn")
    passkey = pipeline_kit.passkey(user)
    account, first = pipeline_kit.deployment(user, passkey)
    again = create_relayer_call(
        kind="deploy_account",
        label="Deploy the smart account",
        to=pipeline_kit.factory.address,
        data=b"anything else",
        idempotency_key=first.idempotency_key,
        details={},
    )
    assert again.pk == first.pk
    before = relayer_nonce(w3)
    assert advance(first.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    # A re-delivered task, and the tick, find it confirmed and send nothing.
    assert submit(operation_id=first.pk).status == Status.CONFIRMED
    tick()
    assert relayer_nonce(w3) == before + 1
    first.refresh_from_db()
    assert first.tx_hashes == [first.tx_hash] and first.attempts == 1
    assert ChainOperation.objects.count() == 1

    pipeline_kit.mark_deployed(account, passkey)
    created = [
        request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=pipeline_kit.noop_call(),
            idempotency_key="same-key",
            details={},
        )
        for _ in range(2)
    ]
    assert created[0].pk == created[1].pk
    assert created[0].user_op_hash == created[1].user_op_hash
    assert ChainOperation.objects.count() == 2


def test_two_pending_operations_of_one_account_never_collide(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("gus")
    operations = [
        request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=pipeline_kit.noop_call(),
            idempotency_key=f"op-{i}",
            details={},
        )
        for i in range(2)
    ]
    # Signed in the reverse order of creation, sent in that order: both land.
    for operation in reversed(operations):
        assert sign_through_api(pipeline_kit, user, operation).status_code == 200
    for operation in reversed(operations):
        assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    # Two EntryPoint nonces (random keys); with bundles, the relayer may send both at once.
    nonces = {
        (ChainOperation.objects.get(pk=o.pk).user_operation or {})["nonce"] for o in operations
    }
    assert len(nonces) == 2


def test_a_call_that_would_revert_fails_before_taking_a_nonce(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    pipeline_kit.deployed_account("hana")  # the relayer has sent one transaction
    # The factory refuses empty init data, in simulation.
    refused = pipeline_kit.factory.encode_abi("deployAccount", args=[b"\x01" * 32, b""])
    again = create_relayer_call(
        kind="deploy_account",
        label="Deploy the smart account",
        to=pipeline_kit.factory.address,
        data=bytes.fromhex(refused[2:]),
        idempotency_key="deploy-again",
        details={},
    )
    next_nonce = RelayerAccount.objects.get().next_nonce
    before = relayer_nonce(w3)
    assert submit(operation_id=again.pk).status == Status.FAILED
    again.refresh_from_db()
    assert again.revert_reason
    assert again.relayer_nonce is None and again.raw_transaction is None
    assert RelayerAccount.objects.get().next_nonce == next_nonce
    assert relayer_nonce(w3) == before


def test_a_user_operation_that_reverts_on_chain_fails_with_its_reason(
    pipeline_kit: PipelineKit, w3: Web3
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("ivan")
    # The account calls the factory with empty init data: it reverts inside execute().
    refused = pipeline_kit.factory.encode_abi("deployAccount", args=[b"\x01" * 32, b""])
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=userops.execute_call_data(
            target=pipeline_kit.factory.address, data=bytes.fromhex(refused[2:])
        ),
        idempotency_key="add-again",
        details={},
    )
    assert sign_through_api(pipeline_kit, user, operation).status_code == 200
    assert advance(operation.pk, until=Status.FAILED) == Status.FAILED
    operation.refresh_from_db()
    # handleOps itself succeeded (the relayer was paid); the user operation did not.
    assert w3.eth.get_transaction_receipt(HexStr(operation.tx_hash))["status"] == 1
    assert operation.block_number is not None
    assert operation.revert_reason
    assert operation.confirmed_at is None and operation.finished_at is not None


def test_a_transaction_the_node_lost_is_sent_again_unchanged(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil
) -> None:
    """Also the crash between storing the signed transaction and sending it: the node does not
    know the transaction either way, and the tracker sends the stored bytes."""
    user = pipeline_kit.user("jack")
    passkey = pipeline_kit.passkey(user)
    _account, operation = pipeline_kit.deployment(user, passkey)
    devnet.rpc(anvil.url, "evm_setAutomine", [False])
    try:
        assert submit(operation_id=operation.pk).status == Status.SUBMITTED
        operation.refresh_from_db()
        first_hash = operation.tx_hash
        assert w3.eth.get_transaction(first_hash) is not None
        devnet.rpc(anvil.url, "anvil_dropAllTransactions")
        assert track(operation_id=operation.pk).status == Status.SUBMITTED
        assert w3.eth.get_transaction(first_hash) is not None
        devnet.rpc(anvil.url, "evm_mine")
    finally:
        devnet.rpc(anvil.url, "evm_setAutomine", [True])
    assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    operation.refresh_from_db()
    assert operation.tx_hash == first_hash and operation.tx_hashes == [first_hash]
    assert operation.attempts == 2


def test_a_stuck_transaction_is_replaced_with_higher_fees(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil, settings: Any
) -> None:
    user = pipeline_kit.user("kim")
    passkey = pipeline_kit.passkey(user)
    _account, operation = pipeline_kit.deployment(user, passkey)
    devnet.rpc(anvil.url, "evm_setAutomine", [False])
    try:
        assert submit(operation_id=operation.pk).status == Status.SUBMITTED
        operation.refresh_from_db()
        first = w3.eth.get_transaction(operation.tx_hash)
        settings.CHAIN_REPLACE_AFTER_SECONDS = 0
        track(operation_id=operation.pk)
        settings.CHAIN_REPLACE_AFTER_SECONDS = 3600
        operation.refresh_from_db()
        assert len(operation.tx_hashes) == 2 and operation.tx_hashes[0] == first["hash"].to_0x_hex()
        second = w3.eth.get_transaction(operation.tx_hashes[1])
        assert first["nonce"] == second["nonce"] == operation.relayer_nonce
        assert second["maxPriorityFeePerGas"] * 1000 >= first["maxPriorityFeePerGas"] * 1125
        assert second["maxFeePerGas"] * 1000 >= first["maxFeePerGas"] * 1125
        assert track(operation_id=operation.pk).status == Status.SUBMITTED
        devnet.rpc(anvil.url, "evm_mine")
    finally:
        devnet.rpc(anvil.url, "evm_setAutomine", [True])
    assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    operation.refresh_from_db()
    # The replacement landed, once; the first is gone.
    assert operation.tx_hash == operation.tx_hashes[1]
    mined = [h for h in operation.tx_hashes if receipt_or_none(w3, h) is not None]
    assert mined == [operation.tx_hash]


def receipt_or_none(w3: Web3, tx_hash: str) -> Any:
    from web3.exceptions import TransactionNotFound

    try:
        return w3.eth.get_transaction_receipt(HexStr(tx_hash))
    except TransactionNotFound:
        return None


def test_a_nonce_used_by_someone_else_is_replaced_by_a_fresh_one(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil, harness: Any
) -> None:
    user = pipeline_kit.user("lena")
    passkey = pipeline_kit.passkey(user)
    _account, operation = pipeline_kit.deployment(user, passkey)
    devnet.rpc(anvil.url, "evm_setAutomine", [False])
    try:
        submit(operation_id=operation.pk)
        devnet.rpc(anvil.url, "anvil_dropAllTransactions")
    finally:
        devnet.rpc(anvil.url, "evm_setAutomine", [True])
    # Another program sends from the relayer key and takes the nonce.
    harness.sender.send(to=harness.relayer.address, value=1)
    assert track(operation_id=operation.pk).status == Status.SUBMITTED
    assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    operation.refresh_from_db()
    assert len(operation.tx_hashes) == 2
    assert w3.eth.get_transaction(operation.tx_hash)["nonce"] == operation.relayer_nonce


def test_a_user_operation_executed_by_another_transaction_is_followed_not_resent(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil, harness: Any
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("lou")
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.noop_call(),
        idempotency_key="elsewhere",
        details={},
    )
    client = client_for(user)
    options = client.post(f"/api/v1/operations/{operation.pk}/options").json()["publicKey"]
    credential = pipeline_kit.authenticator.get(options)
    assert sign(client, operation, credential).status_code == 200
    devnet.rpc(anvil.url, "evm_setAutomine", [False])
    try:
        submit(operation_id=operation.pk)
        devnet.rpc(anvil.url, "anvil_dropAllTransactions")
    finally:
        devnet.rpc(anvil.url, "evm_setAutomine", [True])
    operation.refresh_from_db()
    # Someone else with the relayer key sends the same signed user operation and takes the nonce.
    receipt = harness.submit(userops.user_operation_from_json(operation.user_operation or {}))
    before = relayer_nonce(w3)
    assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    operation.refresh_from_db()
    assert operation.tx_hash == "0x" + bytes(receipt["transactionHash"]).hex()
    assert len(operation.tx_hashes) == 2
    assert relayer_nonce(w3) == before  # nothing sent again


def sign(client: APIClient, operation: ChainOperation, credential: Any) -> Any:
    return client.post(
        f"/api/v1/operations/{operation.pk}/sign", {"credential": credential}, format="json"
    )


def test_a_reorganised_block_sends_the_operation_back_to_submitted(
    pipeline_kit: PipelineKit, w3: Web3, anvil: devnet.Anvil, settings: Any
) -> None:
    settings.CHAIN_CONFIRMATIONS = 3
    user = pipeline_kit.user("mia")
    passkey = pipeline_kit.passkey(user)
    _account, operation = pipeline_kit.deployment(user, passkey)
    snapshot = devnet.rpc(anvil.url, "evm_snapshot")
    assert advance(operation.pk, until=Status.INCLUDED) == Status.INCLUDED
    operation.refresh_from_db()
    old_block = operation.block_hash
    # The block is replaced by others at the same height without the transaction.
    devnet.rpc(anvil.url, "evm_revert", [snapshot])
    devnet.rpc(anvil.url, "anvil_mine", [hex(2)])
    assert track(operation_id=operation.pk).status == Status.SUBMITTED
    # Unknown to the node now: sent again unchanged (and mined), then deep enough.
    assert track(operation_id=operation.pk).status == Status.SUBMITTED
    devnet.rpc(anvil.url, "anvil_mine", [hex(1)])
    assert advance(operation.pk, until=Status.INCLUDED) == Status.INCLUDED
    devnet.rpc(anvil.url, "anvil_mine", [hex(2)])
    assert advance(operation.pk, until=Status.CONFIRMED) == Status.CONFIRMED
    operation.refresh_from_db()
    assert operation.block_hash != old_block
    assert operation.tx_hashes == [operation.tx_hash]


def test_the_tick_expires_unsigned_operations(pipeline_kit: PipelineKit) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("nina")
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.noop_call(),
        idempotency_key="late",
        details={},
    )
    ChainOperation.objects.filter(pk=operation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert tick().expired == 1
    operation.refresh_from_db()
    assert operation.status == Status.EXPIRED and operation.finished_at is not None


def test_operations_api_lists_only_the_users_own_newest_first(
    pipeline_kit: PipelineKit,
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("olga")
    other, _other_passkey, _other_account = pipeline_kit.deployed_account("pete")
    mine = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.noop_call(),
        idempotency_key="mine",
        details={},
    )
    listed = client_for(user).get("/api/v1/operations").json()
    assert [row["id"] for row in listed["results"]] == [
        mine.pk,
        ChainOperation.objects.get(account=account.address, kind="deploy_account").pk,
    ]
    assert listed["count"] == 2
    outsider = client_for(other)
    assert outsider.get(f"/api/v1/operations/{mine.pk}").status_code == 404
    assert outsider.post(f"/api/v1/operations/{mine.pk}/options").status_code == 404
    assert APIClient().get("/api/v1/operations").status_code in (401, 403)


def test_an_undeployed_account_cannot_have_user_operations(pipeline_kit: PipelineKit) -> None:
    user = pipeline_kit.user("quinn")
    passkey = pipeline_kit.passkey(user)
    account, _operation = pipeline_kit.deployment(user, passkey)
    with pytest.raises(PortalError) as refused:
        request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=b"",
            idempotency_key="too-early",
            details={},
        )
    assert refused.value.code == "account_not_deployed"


def test_user_operation_json_round_trips() -> None:
    op = userops.build_user_operation(
        sender="0x000000000000000000000000000000000000dEaD",
        nonce=userops.nonce(key=2**191 + 5, sequence=7),
        call_data=b"\x01\x02",
        verification_gas_limit=1,
        call_gas_limit=2,
        pre_verification_gas=3,
        max_fee_per_gas=4,
        max_priority_fee_per_gas=5,
        signature=b"\xff" * 3,
    )
    assert userops.user_operation_from_json(userops.user_operation_to_json(op)) == op


def test_an_unreachable_chain_is_an_error_to_retry_and_changes_nothing(
    pipeline_kit: PipelineKit, settings: Any
) -> None:
    from chain import tasks

    user = pipeline_kit.user("ray")
    account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{devnet.free_port()}"
    with pytest.raises(ChainUnavailable):
        submit(operation_id=operation.pk)
    operation.refresh_from_db()
    assert operation.status == Status.SIGNED and operation.relayer_nonce is None
    assert not RelayerAccount.objects.exists()
    # Building a user operation needs the chain: a clear 503 to try again, nothing created.
    with pytest.raises(PortalError) as refused:
        request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=b"",
            idempotency_key="no-chain",
            details={},
        )
    assert refused.value.code == "account_not_deployed"
    pipeline_kit.mark_deployed(account, pipeline_kit.passkey(user))
    with pytest.raises(PortalError) as refused:
        request_approval(
            user=user,
            account=account,
            kind="add_passkey",
            label="A test operation",
            call_data=b"",
            idempotency_key="no-chain",
            details={},
        )
    assert refused.value.code == "chain_unavailable" and refused.value.status_code == 503
    assert not ChainOperation.objects.filter(idempotency_key="no-chain").exists()
    # The tasks retry with exponential backoff (with jitter), capped.
    delays = [tasks._backoff(n) for n in range(12)]
    assert 0.25 <= delays[0] <= 0.5 and 8 <= delays[5] <= 16 and max(delays) <= 30


def test_the_admin_shows_operations_read_only(pipeline_kit: PipelineKit) -> None:
    from django.test import Client

    from accounts.models import User

    user = pipeline_kit.user("sue")
    _account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
    admin = User.objects.create_superuser("admin")
    client = Client()
    client.force_login(admin)
    listing = client.get("/admin/chain/chainoperation/")
    assert listing.status_code == 200 and b"deploy_account" in listing.content
    page = client.get(f"/admin/chain/chainoperation/{operation.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.get("/admin/chain/chainoperation/add/").status_code == 403
    assert client.get("/admin/chain/relayeraccount/").status_code == 200
