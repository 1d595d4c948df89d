"""A session from a dapp's request to its revocation, on anvil, PostgreSQL and the pipeline: the
person approves createSession with a passkey, the indexer makes it active, the dapp's key sends
through the relay within its limits, the limits shrink, revocation closes it."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from web3 import Web3

from accounts.models import AuditEvent
from sessionkeys.models import Session
from sessionkeys.services import expire_sessions
from tests.sessionkeys.conftest import RECIPIENT, World

BEEF = Web3.to_checksum_address(RECIPIENT)

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]


def test_request_approve_relay_limit_revoke(world: World) -> None:
    created = world.create(world.sso_params())
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending_approval"
    assert body["origin"] == "http://localhost:8001"
    assert body["create_operation"]["status"] == "awaiting_signature"
    assert AuditEvent.objects.filter(kind="session_requested", user=world.user).exists()

    world.approve(body["create_operation"]["id"])
    session = world.client.get(f"/api/v1/sessions/{body['id']}").json()
    assert session["status"] == "active"
    assert session["approved_at"] is not None
    assert session["chain_read"] is True
    transfer = next(limit for limit in session["limits"] if limit["what"] == "transfer")
    assert (transfer["remaining"], transfer["used"]) == ("1500", "0")
    assert session["response"]["sessionHash"] == session["session_hash"]

    before = world.w3.eth.get_balance(BEEF)
    sent = world.transfer(session, 1000)
    assert sent.status_code == 202, sent.content
    op_hash = sent.json()["userOpHash"]
    operation = Session.objects.get(pk=body["id"]).relayed.get().operation
    assert operation is not None
    world.run(operation.pk)
    assert world.w3.eth.get_balance(BEEF) == before + 1000
    status = world.relay.get(f"/api/v1/sessions/operations/{op_hash}").json()
    assert (status["status"], status["success"]) == ("confirmed", True)

    session = world.client.get(f"/api/v1/sessions/{body['id']}").json()
    transfer = next(limit for limit in session["limits"] if limit["what"] == "transfer")
    assert (transfer["remaining"], transfer["used"]) == ("500", "1000")

    # 1000 more is over the 1500 lifetime limit: refused before anything is sent.
    over = world.prepare(session, value=1000)
    assert over.status_code == 422
    assert over.json()["code"] == "value_limit_exceeded"
    assert over.json()["error"] == "LifetimeUsageExceeded"
    assert AuditEvent.objects.filter(kind="session_relay_refused", user=world.user).exists()

    revoke = world.client.post(f"/api/v1/sessions/{body['id']}/revoke")
    assert revoke.status_code == 201, revoke.content
    world.approve(revoke.json()["id"])
    session = world.client.get(f"/api/v1/sessions/{body['id']}").json()
    assert session["status"] == "revoked" and session["revoked_at"] is not None
    refused = world.prepare(session, value=1)
    assert refused.status_code == 422
    assert refused.json()["code"] == "session_not_active"


def test_revoke_all_closes_every_open_session(world: World) -> None:
    from eth_account import Account

    first = world.active_session()
    world.key = Account.create()
    second = world.active_session()
    revoke = world.client.post("/api/v1/sessions/revoke-all")
    assert revoke.status_code == 201, revoke.content
    assert "2 session keys" in revoke.json()["label"]
    world.approve(revoke.json()["id"])
    for session in (first, second):
        assert world.client.get(f"/api/v1/sessions/{session['id']}").json()["status"] == "revoked"
    again = world.client.post("/api/v1/sessions/revoke-all")
    assert (again.status_code, again.json()["code"]) == (409, "nothing_to_revoke")


def test_the_beat_task_marks_expired_sessions_and_pending_ones_failed(world: World) -> None:
    session = world.active_session()
    pending = world.create(world.sso_params(signer=world.key.address, expiresAt=world.now() + 7200))
    assert pending.status_code == 201
    assert expire_sessions(now=timezone.now() + timedelta(hours=3)) == 2
    assert Session.objects.get(pk=session["id"]).status == "expired"
    assert Session.objects.get(pk=session["id"]).expired_at is not None
    assert Session.objects.get(pk=pending.json()["id"]).status == "failed"
    # An expired session is still open on chain (as in SSO): it can be revoked.
    revoke = world.client.post(f"/api/v1/sessions/{session['id']}/revoke")
    assert revoke.status_code == 201, revoke.content


def test_an_account_without_the_validator_installs_it_in_the_same_approval(
    world: World, settings: Any
) -> None:
    """An account deployed before the SessionKeyValidator existed: one passkey approval runs
    installModule and createSession in one batch."""
    from rest_framework.test import APIClient

    from chain.models import Deployment
    from sessionkeys.selectors import validator_installed

    row = Deployment.objects.get(chain_id=settings.CHAIN_ID, name="SessionKeyValidator")
    row.delete()
    user, _passkey, account = world.kit.deployed_account("olderaccount")
    Deployment.objects.create(
        chain_id=row.chain_id, name=row.name, address=row.address, code_hash=row.code_hash
    )
    assert not validator_installed(account=account.address)
    world.user, world.account = user, account
    world.client = APIClient()
    world.client.force_authenticate(user)
    created = world.create(world.sso_params())
    assert created.status_code == 201, created.content
    world.approve(created.json()["create_operation"]["id"])
    assert validator_installed(account=account.address)
    assert world.client.get(f"/api/v1/sessions/{created.json()['id']}").json()["status"] == "active"


def test_stale_relay_preparations_are_forgotten(world: World) -> None:
    from sessionkeys.models import RelayedOperation
    from sessionkeys.services import purge_prepared_operations

    session = world.active_session()
    prepared = world.prepare(session, value=1)
    assert prepared.status_code == 200
    assert purge_prepared_operations() == 0
    assert purge_prepared_operations(now=timezone.now() + timedelta(hours=1)) == 1
    assert not RelayedOperation.objects.exists()
    # The dapp sending it back now is refused: it was never (or no longer) prepared.
    sent = world.send(world.sign(prepared.json(), session))
    assert (sent.status_code, sent.json()["code"]) == (422, "not_prepared")
