"""A person with a deployed account on anvil (through the pipeline), a dapp with its own session
key, and helpers that walk a session through the portal: request, passkey approval, pipeline,
indexer, relay."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from web3 import Web3
from web3.types import Wei

from chain import userops
from chain.indexer import index_chain
from chain.models import ChainOperation
from tests.chain import conftest as chain_fixtures
from tests.chain.conftest import PipelineKit, advance

# The chain tests' fixtures, used here too.
_evm_snapshot = chain_fixtures._evm_snapshot
addresses = chain_fixtures.addresses
anvil = chain_fixtures.anvil
pipeline_chain = chain_fixtures.pipeline_chain
pipeline_kit = chain_fixtures.pipeline_kit
redis_broker = chain_fixtures.redis_broker
w3 = chain_fixtures.w3

DAPP = "http://localhost:8001"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


@dataclass
class World:
    kit: PipelineKit
    w3: Web3
    user: Any
    passkey: Any
    account: Any
    client: APIClient
    relay: APIClient
    key: LocalAccount = field(default_factory=Account.create)

    # --- the dapp's request

    def sso_params(self, **overrides: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "signer": self.key.address,
            "expiresAt": self.now() + 3600,
            "feeLimit": {"limitType": "lifetime", "limit": str(10**17)},
            "callPolicies": [],
            "transferPolicies": [
                {
                    "target": RECIPIENT,
                    "maxValuePerUse": "1000",
                    "valueLimit": {"limitType": "lifetime", "limit": "1500"},
                }
            ],
        }
        config.update(overrides)
        return {"sessionConfig": config}

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def preview(self, params: Any, *, method: str = "sso_createSession") -> Any:
        return self.client.post(
            "/api/v1/sessions/preview",
            {"origin": DAPP, "method": method, "params": params},
            format="json",
        )

    def proof(self, preview: dict[str, Any], *, key: LocalAccount | None = None) -> str:
        digest = bytes.fromhex(preview["proof_digest"][2:])
        return "0x" + bytes(Account.unsafe_sign_hash(digest, (key or self.key).key).signature).hex()

    def create(
        self, params: dict[str, Any], *, method: str = "sso_createSession", proof: str | None = None
    ) -> Any:
        if proof is None:
            preview = self.preview(params, method=method)
            assert preview.status_code == 200, preview.content
            proof = self.proof(preview.json())
        return self.client.post(
            "/api/v1/sessions",
            {"origin": DAPP, "method": method, "params": params, "proof": proof, "label": "game"},
            format="json",
        )

    # --- the person's passkey, the pipeline, the indexer

    def approve(self, operation_id: int) -> str:
        options = self.client.post(f"/api/v1/operations/{operation_id}/options")
        assert options.status_code == 200, options.content
        credential = self.kit.authenticator.get(options.json()["publicKey"])
        signed = self.client.post(
            f"/api/v1/operations/{operation_id}/sign", {"credential": credential}, format="json"
        )
        assert signed.status_code == 200, signed.content
        return self.run(operation_id)

    def run(self, operation_id: int) -> str:
        status = advance(operation_id, until="confirmed")
        operation = ChainOperation.objects.get(pk=operation_id)
        assert status == "confirmed", (status, operation.revert_reason, operation.last_error)
        index_chain(w3=self.w3)
        return status

    def active_session(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        created = self.create(params or self.sso_params())
        assert created.status_code == 201, created.content
        self.approve(created.json()["create_operation"]["id"])
        detail = self.client.get(f"/api/v1/sessions/{created.json()['id']}")
        assert detail.json()["status"] == "active", detail.json()
        return dict(detail.json())

    # --- the dapp's relay calls

    def prepare(
        self, session: dict[str, Any], *, to: str = RECIPIENT, value: int = 0, data: str = "0x"
    ) -> Any:
        return self.relay.post(
            "/api/v1/sessions/operations/prepare",
            {
                "account": session["account"],
                "context": session["context"],
                "call": {"to": to, "value": hex(value), "data": data},
            },
            format="json",
        )

    def sign(
        self, prepared: dict[str, Any], session: dict[str, Any], *, key: LocalAccount | None = None
    ) -> dict[str, str]:
        from chain import session_keys

        op = userops.user_operation_from_json(prepared["userOperation"])
        op_hash = bytes.fromhex(prepared["userOpHash"][2:])
        signature = bytes(Account.unsafe_sign_hash(op_hash, (key or self.key).key).signature)
        spec = session_keys.SessionSpec.decode(bytes.fromhex(session["context"][2:]))
        signed = op.with_changes(
            signature=session_keys.encode_session_signature(
                validator=prepared["validator"],
                signature=signature,
                spec=spec,
                period_ids=prepared["periodIds"],
            )
        )
        return userops.user_operation_to_json(signed)

    def send(self, user_operation: dict[str, str]) -> Any:
        return self.relay.post(
            "/api/v1/sessions/operations", {"userOperation": user_operation}, format="json"
        )

    def transfer(self, session: dict[str, Any], value: int) -> Any:
        prepared = self.prepare(session, value=value)
        if prepared.status_code != 200:
            return prepared
        return self.send(self.sign(prepared.json(), session))


@pytest.fixture
def world(pipeline_kit: PipelineKit) -> World:
    kit = pipeline_kit
    user, passkey, account = kit.deployed_account(f"rosa{time.monotonic_ns() % 10**6}")
    kit.w3.eth.send_transaction(
        {"from": kit.w3.eth.accounts[0], "to": account.address, "value": Wei(10**18)}
    )
    index_chain(w3=kit.w3)
    client = APIClient()
    client.force_authenticate(user)
    return World(
        kit=kit,
        w3=kit.w3,
        user=user,
        passkey=passkey,
        account=account,
        client=client,
        relay=APIClient(REMOTE_ADDR="198.51.100.9"),
    )
