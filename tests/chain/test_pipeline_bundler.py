"""CHAIN_BUNDLER_URL: user operations go to a real ERC-4337 bundler (Alto, npm @pimlico/alto)
against anvil, through the same API a person uses; account deployments still go through the
relayer. Same states and guarantees as the relayer's path: nothing sent twice, a lost operation
sent again, progress (status, transaction, block) visible, the indexer sees the result."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from eth_typing import HexStr
from rest_framework.test import APIClient
from web3 import Web3

from chain.client import account_from_key, relayer_account
from chain.devtools import devnet
from chain.devtools.authenticator import SoftAuthenticator
from chain.devtools.processes import AltoBundler
from chain.indexer import index_chain
from chain.models import ChainEvent, ChainOperation
from chain.pipeline import bundler
from chain.pipeline.submit import submit
from chain.pipeline.track import track
from passkeys.models import Passkey
from tests.chain.conftest import PipelineKit, advance

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
# anvil's accounts #4, #5 (executors) and #6 (utility): none of them is the portal's relayer.
EXECUTOR_KEYS = (
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
)
UTILITY_KEY = "0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e"


def start_alto(
    anvil: devnet.Anvil, addresses: dict[str, str], log: Path, *args: str
) -> AltoBundler:
    alto = AltoBundler(
        rpc_url=anvil.url,
        entry_point=addresses["EntryPoint"],
        executor_keys=EXECUTOR_KEYS,
        utility_key=UTILITY_KEY,
        log_path=log,
        extra_args=args,
    )
    alto.start()
    return alto


@pytest.fixture
def alto(
    anvil: devnet.Anvil, pipeline_chain: dict[str, str], settings: Any, tmp_path: Path
) -> Iterator[AltoBundler]:
    """Alto on its own port, inside the test's EVM snapshot (its simulation contracts too)."""
    if not AltoBundler.installed():
        pytest.skip("@pimlico/alto is not installed (make setup)")
    alto = start_alto(anvil, pipeline_chain, tmp_path / "alto.log")
    settings.CHAIN_BUNDLER_URL = alto.url
    bundler._supported.clear()
    yield alto
    alto.stop()
    bundler._supported.clear()


class Person:
    """Someone who signed up through the API, with their token and authenticator."""

    def __init__(self, username: str) -> None:
        self.client = APIClient(REMOTE_ADDR="203.0.113.8")
        self.authenticator = SoftAuthenticator()
        options = self.client.post(
            "/api/v1/auth/register/options", {"username": username}, format="json"
        ).json()
        response = self.client.post(
            "/api/v1/auth/register/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": self.authenticator.create(options["publicKey"]),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")

    def post(self, url: str, body: Any = None) -> Any:
        return self.client.post(url, body or {}, format="json")

    def approve(self, operation_id: int) -> Any:
        options = self.post(f"/api/v1/operations/{operation_id}/options")
        assert options.status_code == 200, options.content
        return self.post(
            f"/api/v1/operations/{operation_id}/sign",
            {"credential": self.authenticator.get(options.json()["publicKey"])},
        )

    def operation(self, operation_id: int) -> dict[str, Any]:
        return dict(self.client.get(f"/api/v1/operations/{operation_id}").json())


def settle(operation_id: int) -> ChainOperation:
    advance(operation_id, until={Status.CONFIRMED, Status.FAILED}, timeout=30)
    return ChainOperation.objects.get(pk=operation_id)


def test_passkey_operations_go_through_alto_and_the_indexer_sees_them(
    alto: AltoBundler, pipeline_kit: PipelineKit, w3: Web3
) -> None:
    # Sign-up: the deployment is a relayer call, sent by the relayer as before.
    ada = Person("ada")
    deployment = ChainOperation.objects.get(kind="deploy_account")
    assert settle(deployment.pk).status == Status.CONFIRMED
    assert (
        deployment.submitted_via == ""
        and ChainOperation.objects.get(pk=deployment.pk).submitted_via == "relayer"
    )
    index_chain()
    first = Passkey.objects.get(user__username="ada")
    assert first.onchain == Passkey.OnChain.ACTIVE

    # A second passkey: its addValidationKey is a sponsored user operation the first one signs.
    other = SoftAuthenticator()
    options = ada.post("/api/v1/passkeys/register/options").json()
    added = ada.post(
        "/api/v1/passkeys/register/verify",
        {"ceremony_id": options["ceremony_id"], "credential": other.create(options["publicKey"])},
    )
    assert added.status_code == 201, added.content
    operation = ChainOperation.objects.get(kind="add_passkey")
    assert ada.approve(operation.pk).json()["status"] == "signed"

    executors = {account_from_key(key).address for key in EXECUTOR_KEYS}
    done = settle(operation.pk)
    assert done.status == Status.CONFIRMED, (done.last_error, done.revert_reason)
    assert done.submitted_via == "bundler" and done.relayer == "" and done.relayer_nonce is None
    tx = w3.eth.get_transaction(HexStr(done.tx_hash))
    assert tx["from"] in executors and tx["from"] != relayer_account().address
    assert tx["to"] == pipeline_kit.addresses["EntryPoint"]
    shown = ada.operation(operation.pk)
    assert shown["status"] == "confirmed"
    assert shown["tx_hash"] == done.tx_hash and shown["block_number"] == done.block_number

    index_chain()
    second = Passkey.objects.get(user__username="ada", credential_id=next(iter(other.credentials)))
    assert second.onchain == Passkey.OnChain.ACTIVE
    assert ChainEvent.objects.filter(
        name="UserOperationEvent", tx_hash=done.tx_hash, args__success=True
    ).exists()

    # Removing the first passkey: another sponsored user operation, signed by the second one.
    # Confirmed with the second first, so the token (signed in with the first) survives.
    ada.authenticator = other
    options = ada.post("/api/v1/auth/reauth/options").json()
    confirmed = ada.post(
        "/api/v1/auth/reauth/verify",
        {"ceremony_id": options["ceremony_id"], "credential": other.get(options["publicKey"])},
    )
    assert confirmed.status_code == 200, confirmed.content
    removed = ada.client.delete(f"/api/v1/passkeys/{first.pk}")
    assert removed.status_code in (200, 204), removed.content
    removal = ChainOperation.objects.get(kind="remove_passkey")
    assert ada.approve(removal.pk).json()["status"] == "signed"
    assert settle(removal.pk).status == Status.CONFIRMED
    index_chain()
    assert ChainEvent.objects.filter(name="PasskeyRemoved", account=done.account).exists()
    key = pipeline_kit.validator.functions.getAccountKey(
        settings.PORTAL_ORIGINS[0], bytes(first.credential_id), done.account
    ).call()
    assert not any(int.from_bytes(part, "big") for part in key)


def signed_operation(kit: PipelineKit, name: str) -> ChainOperation:
    from passkeys.approvals import approval_options, approve_operation, request_approval
    from portal.client_info import ClientInfo

    user, _passkey, account = kit.deployed_account(name)
    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=kit.noop_call(),
        idempotency_key=f"noop-{name}",
        details={},
    )
    _operation, options = approval_options(user=user, operation_id=operation.pk)
    return approve_operation(
        user=user,
        operation_id=operation.pk,
        credential=kit.authenticator.get(options),
        client=ClientInfo(ip_address="203.0.113.9", user_agent="test"),
    )


def test_an_operation_stored_but_never_sent_is_sent_by_the_tracker_once(
    alto: AltoBundler, pipeline_kit: PipelineKit, w3: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    operation = signed_operation(pipeline_kit, "bea")
    # The worker dies right after the commit: stored as submitted, never sent.
    monkeypatch.setattr(bundler, "send", lambda w3, operation: operation)
    assert submit(operation_id=operation.pk).status == Status.SUBMITTED
    monkeypatch.undo()
    assert bundler.call("eth_getUserOperationByHash", [operation.user_op_hash]) is None
    # The tracker finds the bundler does not know it and the nonce unused: sends it, once.
    done = settle(operation.pk)
    assert done.status == Status.CONFIRMED, done.last_error
    assert done.attempts == 2
    # Sending it again (a re-delivered task) changes nothing.
    assert bundler.send(w3, done).status == Status.CONFIRMED
    assert track(operation_id=operation.pk).status == Status.CONFIRMED
    logs = w3.eth.get_logs(
        {
            "address": Web3.to_checksum_address(pipeline_kit.addresses["EntryPoint"]),
            "fromBlock": 0,
            "topics": [None, operation.user_op_hash],  # type: ignore[list-item]
        }
    )
    assert len(logs) == 1


def test_an_operation_the_bundler_lost_is_sent_again(
    alto: AltoBundler,
    anvil: devnet.Anvil,
    pipeline_kit: PipelineKit,
    w3: Web3,
    settings: Any,
    tmp_path: Path,
) -> None:
    operation = signed_operation(pipeline_kit, "cal")
    alto.stop()
    # A bundler that only bundles when told: the operation waits in its mempool, then the
    # bundler is restarted and has forgotten it.
    manual = start_alto(
        anvil, pipeline_kit.addresses, tmp_path / "manual.log", "--bundle-mode", "manual"
    )
    settings.CHAIN_BUNDLER_URL = manual.url
    try:
        assert submit(operation_id=operation.pk).status == Status.SUBMITTED
        for _ in range(3):
            assert track(operation_id=operation.pk).status == Status.SUBMITTED  # pending there
        assert ChainOperation.objects.get(pk=operation.pk).attempts == 1  # not sent again
    finally:
        manual.stop()
    restarted = start_alto(anvil, pipeline_kit.addresses, tmp_path / "again.log")
    settings.CHAIN_BUNDLER_URL = restarted.url
    try:
        done = settle(operation.pk)
    finally:
        restarted.stop()
    assert done.status == Status.CONFIRMED, done.last_error
    assert done.attempts == 2 and done.block_number is not None


def test_an_operation_the_bundler_refuses_fails_with_its_reason_and_nothing_is_sent(
    alto: AltoBundler, pipeline_kit: PipelineKit, w3: Web3
) -> None:
    from chain import userops
    from chain.pipeline.create import attach_signature

    user, _passkey, account = pipeline_kit.deployed_account("dora")
    from passkeys.approvals import request_approval

    operation = request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=pipeline_kit.noop_call(),
        idempotency_key="bad-signature",
        details={},
    )
    # A signature the validator does not accept (the validator's address, a garbage payload).
    attach_signature(
        operation_id=operation.pk,
        signature=bytes.fromhex(pipeline_kit.validator.address[2:]) + b"\x01" * 64,
    )
    head = w3.eth.block_number
    done = settle(operation.pk)
    # Estimation tolerates a bad signature (bundlers estimate with dummy ones); the send is
    # refused: the operation fails with the bundler's reason, and no transaction carries it.
    assert done.status == Status.FAILED, done.last_error
    assert "AA24" in done.revert_reason, done.revert_reason
    assert done.tx_hash == "" and done.block_number is None
    assert w3.eth.block_number == head
    op = userops.user_operation_from_json(done.user_operation or {})
    assert op.signature


def test_a_url_that_is_not_a_bundler_leaves_the_operation_signed_with_the_error(
    pipeline_kit: PipelineKit, anvil: devnet.Anvil, settings: Any
) -> None:
    operation = signed_operation(pipeline_kit, "eve")
    settings.CHAIN_BUNDLER_URL = anvil.url  # a node, not a bundler
    bundler._supported.clear()
    try:
        with pytest.raises(bundler.BundlerError):
            submit(operation_id=operation.pk)
    finally:
        bundler._supported.clear()
    operation.refresh_from_db()
    assert operation.status == Status.SIGNED and operation.submitted_at is None
