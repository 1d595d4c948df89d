"""People with deployed smart accounts on the session anvil, driving the recovery API the way the
pages do: every chain step approved with a passkey through /api/v1/operations/{id}/options|sign,
then run through the pipeline in-process and indexed."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from chain.devtools import devnet
from chain.devtools.authenticator import SoftAuthenticator
from chain.indexer import index_chain
from chain.models import ChainOperation

# The chain fixtures live with the chain tests; importing them makes them available here.
from tests.chain.conftest import (  # noqa: F401
    PipelineKit,
    addresses,
    advance,
    anvil,
    pipeline_chain,
    pipeline_kit,
    redis_broker,
    w3,
)

Status = ChainOperation.Status


class Person:
    def __init__(self, kit: PipelineKit, username: str) -> None:
        self.kit = kit
        self.user, self.passkey, self.account = kit.deployed_account(username)
        self.client = APIClient(REMOTE_ADDR="203.0.113.9")
        self.client.force_authenticate(self.user)

    def post(self, url: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(url, body or {}, format="json")

    def approve(self, operation: dict[str, Any] | None, *, until: str = Status.CONFIRMED) -> str:
        """Approve the operation with this person's passkey, run it, index the chain."""
        assert operation is not None, "no operation to approve"
        options = self.post(f"/api/v1/operations/{operation['id']}/options")
        assert options.status_code == 200, options.content
        credential = self.kit.authenticator.get(
            options.json()["publicKey"], credential_id=bytes(self.passkey.credential_id)
        )
        signed = self.post(f"/api/v1/operations/{operation['id']}/sign", {"credential": credential})
        assert signed.status_code == 200, signed.content
        status = advance(operation["id"], until={until, Status.FAILED})
        index_chain()
        return status


class Recovery:
    """Someone on a new device: an authenticator the portal has never seen."""

    def __init__(self) -> None:
        self.client = APIClient(REMOTE_ADDR="198.51.100.20", HTTP_USER_AGENT="NewPhone/1.0")
        self.authenticator = SoftAuthenticator()

    def start(self, username: str, **changes: Any) -> Any:
        options = self.client.post(
            "/api/v1/recoveries/options", {"username": username}, format="json"
        )
        if options.status_code != 200:
            return options
        credential = self.authenticator.create(options.json()["publicKey"], **changes)
        return self.client.post(
            "/api/v1/recoveries",
            {
                "username": username,
                "ceremony_id": options.json()["ceremony_id"],
                "credential": credential,
                "passkey_name": "New phone",
            },
            format="json",
        )


def move_chain_time(anvil_node: devnet.Anvil, seconds: int) -> int:
    """Mine a block `seconds` after the latest one; returns its timestamp."""
    head: Any = devnet.rpc(anvil_node.url, "eth_getBlockByNumber", ["latest", False])
    target = int(head["timestamp"], 16) + seconds
    devnet.rpc(anvil_node.url, "evm_setNextBlockTimestamp", [target])
    devnet.rpc(anvil_node.url, "evm_mine")
    return target


@pytest.fixture
def people(pipeline_kit: PipelineKit) -> dict[str, Person]:  # noqa: F811
    return {name: Person(pipeline_kit, name) for name in ("alice", "bob", "carol")}


def make_guardian(owner: Person, guardian: Person) -> int:
    """`guardian` proposed by `owner` and accepted, both on chain; the Guardian's id."""
    proposed = owner.post("/api/v1/guardians", {"username": guardian.user.username})
    assert proposed.status_code == 201, proposed.content
    assert owner.approve(proposed.json()["operation"]) == Status.CONFIRMED
    guardian_id = proposed.json()["guardian"]["id"]
    accepted = guardian.post(f"/api/v1/guardians/{guardian_id}/accept")
    assert accepted.status_code == 201, accepted.content
    assert guardian.approve(accepted.json()["operation"]) == Status.CONFIRMED
    return int(guardian_id)
