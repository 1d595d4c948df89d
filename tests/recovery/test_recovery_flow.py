"""The whole recovery on anvil through the API: a guardian proposed and accepted on chain, a
recovery started on a new device, approved by the guardian after the code, finalized by the beat
task after 24 hours; the new passkey signs in and approves chain operations. And the other ends:
the owner cancels, the request expires."""

from typing import Any

import pytest
from django.core import mail
from web3 import Web3

from accounts.models import AuditEvent
from chain.client import contract
from chain.devtools import devnet
from chain.models import ChainOperation
from passkeys.models import Passkey
from recovery.models import Guardian, RecoveryRequest
from recovery.services import run_deadlines
from tests.recovery.conftest import Person, Recovery, make_guardian, move_chain_time

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def _emails(settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"


@pytest.fixture(autouse=True)
def _eager(celery_eager: Any) -> None:
    """Security emails are sent in-process (the pipeline is driven by hand with advance())."""


def started(people: dict[str, Person]) -> tuple[Recovery, dict[str, Any]]:
    make_guardian(people["alice"], people["bob"])
    device = Recovery()
    response = device.start("alice")
    assert response.status_code == 201, response.content
    return device, response.json()


def test_guardian_is_proposed_invited_and_accepted_on_chain(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.user.email, bob.user.email = "alice@example.org", "bob@example.org"
    alice.user.save()
    bob.user.save()
    proposed = alice.post("/api/v1/guardians", {"username": "bob"})
    assert proposed.status_code == 201, proposed.content
    guardian = proposed.json()["guardian"]
    assert guardian["status"] == "proposed" and guardian["address"] == bob.account.address
    assert proposed.json()["operation"]["kind"] == "propose_guardian"

    # Bob cannot accept before the proposal is on chain.
    early = bob.post(f"/api/v1/guardians/{guardian['id']}/accept")
    assert early.status_code == 409
    assert early.json()["code"] == "guardian_not_proposed_on_chain"

    assert alice.approve(proposed.json()["operation"]) == Status.CONFIRMED
    row = Guardian.objects.get(pk=guardian["id"])
    assert row.proposed_on_chain and row.status == Guardian.Status.PROPOSED
    assert any("asks you to be a recovery guardian" in m.subject for m in mail.outbox)
    assert bob.client.get("/api/v1/guardians").json()["guarding"][0]["owner"] == "alice"

    accepted = bob.post(f"/api/v1/guardians/{guardian['id']}/accept")
    assert accepted.status_code == 201, accepted.content
    assert accepted.json()["operation"]["account"] == bob.account.address
    assert bob.approve(accepted.json()["operation"]) == Status.CONFIRMED
    row.refresh_from_db()
    assert row.status == Guardian.Status.ACTIVE

    executor = contract(w3, "GuardianExecutor", pipeline_chain["GuardianExecutor"])
    assert executor.functions.guardianStatusFor(
        alice.account.address, bob.account.address
    ).call() == [
        True,
        True,
    ]
    mine = alice.client.get("/api/v1/guardians").json()
    assert mine["recovery_enabled"] is True
    assert [g["status"] for g in mine["guardians"]] == ["active"]
    assert alice.client.get("/api/v1/me").json()["resilience"]["facts"]["guardians"] == 1


def test_recovery_approved_after_the_code_is_finalized_after_24_hours(
    people: dict[str, Person], anvil: devnet.Anvil, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice.user.email = "alice@example.org"
    alice.user.save()
    device, recovery = started(people)
    assert recovery["status"] == "pending_approval"
    assert len(recovery["code"].replace(" ", "")) == 6
    public = device.client.get(f"/api/v1/recoveries/{recovery['id']}").json()
    assert "code" not in public and "requester_ip" not in public
    assert public["fingerprint"] == recovery["fingerprint"]
    owner_view = alice.client.get(f"/api/v1/recoveries/{recovery['id']}").json()
    assert owner_view["requester_ip"] == "198.51.100.20"
    assert any("started a recovery" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.RECOVERY_STARTED).count() == 1
    # The owner's pages show it, with a cancel button.
    alice.client.force_login(alice.user)
    page = alice.client.get("/account").content.decode()
    assert "Someone is recovering your account" in page and "Cancel this recovery" in page

    wrong = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": "000 000"})
    if recovery["code"].replace(" ", "") == "000000":  # pragma: no cover - one in a million
        wrong = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": "111111"})
    assert wrong.status_code == 400 and wrong.json()["code"] == "code_mismatch"

    approved = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": recovery["code"]})
    assert approved.status_code == 201, approved.content
    assert approved.json()["operation"]["kind"] == "initialize_recovery"
    assert bob.approve(approved.json()["operation"]) == Status.CONFIRMED
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.INITIATED
    assert request.initiated_by == bob.account.address
    assert request.completes_at is not None

    # Before the delay: nothing is sent.
    assert run_deadlines().finalizing == 0
    move_chain_time(anvil, DAY - 60)
    assert run_deadlines().finalizing == 0
    move_chain_time(anvil, 120)
    assert run_deadlines().finalizing == 1
    request.refresh_from_db()
    assert request.finalize_operation is not None
    assert pipeline_advance(request.finalize_operation.pk) == Status.CONFIRMED
    from chain.indexer import index_chain

    index_chain()
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.FINALIZED
    assert request.passkey is not None
    assert request.passkey.onchain == Passkey.OnChain.ACTIVE
    assert request.passkey.user == alice.user

    # The new passkey signs in.
    login = device.client.post("/api/v1/auth/login/options", {"username": "alice"}, format="json")
    credential = device.authenticator.get(login.json()["publicKey"])
    signed_in = device.client.post(
        "/api/v1/auth/login/verify",
        {"ceremony_id": login.json()["ceremony_id"], "credential": credential},
        format="json",
    )
    assert signed_in.status_code == 200, signed_in.content
    assert signed_in.json()["user"]["username"] == "alice"
    validator = contract(w3, "WebAuthnValidator", pipeline_chain["WebAuthnValidator"])
    from accounts.smart_accounts import chain_origin

    key = validator.functions.getAccountKey(
        chain_origin(), bytes(request.credential_id), alice.account.address
    ).call()
    assert key != [bytes(32), bytes(32)]


def pipeline_advance(operation_id: int) -> str:
    from tests.chain.conftest import advance

    return advance(operation_id, until={Status.CONFIRMED, Status.FAILED})


def test_the_owner_cancels_from_a_device_that_still_works(
    people: dict[str, Person], anvil: devnet.Anvil
) -> None:
    alice, bob = people["alice"], people["bob"]
    bob.user.email = "bob@example.org"
    bob.user.save()
    _device, recovery = started(people)
    approved = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": recovery["code"]})
    assert bob.approve(approved.json()["operation"]) == Status.CONFIRMED

    discarded = alice.post(f"/api/v1/recoveries/{recovery['id']}/discard")
    assert discarded.status_code == 202, discarded.content
    assert discarded.json()["operation"]["kind"] == "discard_recovery"
    assert alice.approve(discarded.json()["operation"]) == Status.CONFIRMED
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.DISCARDED
    assert request.end_reason == "discarded_by_owner"
    assert any("was cancelled" in m.subject for m in mail.outbox if "bob@example.org" in m.to)
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.RECOVERY_DISCARDED, details__reason="discarded_by_owner"
    ).exists()
    # Even after 24 hours, nothing is finalized.
    move_chain_time(anvil, DAY + 10)
    assert run_deadlines().finalizing == 0


def test_a_request_not_finalized_within_72_hours_expires(
    people: dict[str, Person], anvil: devnet.Anvil
) -> None:
    bob = people["bob"]
    device, recovery = started(people)
    approved = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": recovery["code"]})
    assert bob.approve(approved.json()["operation"]) == Status.CONFIRMED
    move_chain_time(anvil, 3 * DAY)
    run = run_deadlines()
    assert (run.finalizing, run.expired) == (0, 1)
    shown = device.client.get(f"/api/v1/recoveries/{recovery['id']}").json()
    assert shown["status"] == "expired" and shown["end_reason"] == "not_finalized_in_time"
    assert not Passkey.objects.filter(credential_id=RecoveryRequest.objects.get().credential_id)
