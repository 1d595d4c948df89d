"""Every refusal of the recovery API, each with its stable code, and nothing half-written."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from chain.models import ChainOperation
from recovery.models import Guardian, RecoveryRequest
from recovery.services import run_deadlines
from tests.recovery.conftest import Person, Recovery, make_guardian

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status


def code_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json().get("code", "")


def lockdown(on: bool) -> None:
    from domains.services import set_lockdown

    set_lockdown(enabled=on, reason="test", actor=None, client=None)


def test_proposing_refusals(people: dict[str, Person]) -> None:
    alice = people["alice"]
    assert code_of(alice.post("/api/v1/guardians", {"username": "alice"})) == (
        400,
        "guardian_is_self",
    )
    assert code_of(alice.post("/api/v1/guardians", {"username": "nobody"})) == (
        404,
        "guardian_not_found",
    )
    assert code_of(alice.post("/api/v1/guardians", {"address": "0x1234"})) == (
        400,
        "invalid_address",
    )
    assert code_of(alice.post("/api/v1/guardians", {"address": "0x" + "00" * 20})) == (
        400,
        "invalid_address",
    )
    assert code_of(alice.post("/api/v1/guardians", {"address": alice.account.address})) == (
        400,
        "guardian_is_self",
    )
    both = alice.post("/api/v1/guardians", {"username": "bob", "address": "0x" + "11" * 20})
    assert code_of(both) == (400, "invalid_request")
    assert Guardian.objects.count() == 0
    assert alice.post("/api/v1/guardians", {"username": "bob"}).status_code == 201
    assert code_of(alice.post("/api/v1/guardians", {"username": "bob"})) == (
        409,
        "guardian_exists",
    )
    assert Guardian.objects.count() == 1


def test_the_lockdown_refuses_guardian_changes_and_discards(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    guardian_id = make_guardian(alice, bob)
    _device, recovery = start(alice)
    lockdown(True)
    try:
        assert code_of(alice.post("/api/v1/guardians", {"username": "carol"})) == (423, "lockdown")
        assert code_of(alice.client.delete(f"/api/v1/guardians/{guardian_id}")) == (
            423,
            "lockdown",
        )
        assert code_of(alice.post(f"/api/v1/recoveries/{recovery['id']}/discard")) == (
            423,
            "lockdown",
        )
    finally:
        lockdown(False)
    assert RecoveryRequest.objects.get().status == RecoveryRequest.Status.PENDING_APPROVAL
    # Each refusal is in Alice's activity log, with the action it refused.
    from accounts.models import AuditEvent

    refused = AuditEvent.objects.filter(kind="action_refused", user=alice.user)
    assert sorted(event.details["action"] for event in refused) == [
        "guardian.change",
        "guardian.change",
        "recovery.discard",
    ]


def start(owner: Person) -> tuple[Recovery, dict[str, Any]]:
    device = Recovery()
    response = device.start(owner.user.username)
    assert response.status_code == 201, response.content
    return device, response.json()


def test_no_guardian_change_while_a_recovery_is_pending(people: dict[str, Person]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    guardian_id = make_guardian(alice, bob)
    start(alice)
    assert code_of(alice.post("/api/v1/guardians", {"username": "carol"})) == (
        409,
        "recovery_pending",
    )
    assert code_of(alice.client.delete(f"/api/v1/guardians/{guardian_id}")) == (
        409,
        "recovery_pending",
    )
    assert Guardian.objects.get(pk=guardian_id).status == Guardian.Status.ACTIVE
    assert not Guardian.objects.filter(guardian_user=carol.user).exists()
    # A second start for the same account is refused too.
    assert code_of(Recovery().start("alice")) == (409, "recovery_pending")


def test_starting_refusals(people: dict[str, Person], settings: Any) -> None:
    alice, bob = people["alice"], people["bob"]
    assert code_of(Recovery().start("nobody")) == (404, "account_not_found")
    assert code_of(Recovery().start("alice")) == (409, "no_guardians")
    make_guardian(alice, bob)
    # A passkey made on another accepted origin cannot be installed on chain.
    settings.PORTAL_ORIGINS = [*settings.PORTAL_ORIGINS, "http://localhost:9000"]
    assert code_of(Recovery().start("alice", origin="http://localhost:9000")) == (
        400,
        "origin_not_on_chain",
    )
    # Alice's existing passkey cannot be presented as a new one.
    device = Recovery()
    device.authenticator = alice.kit.authenticator
    reused = device.start("alice", reuse=bytes(alice.passkey.credential_id))
    assert code_of(reused) == (409, "credential_already_registered")
    assert code_of(Recovery().start("alice", user_verified=False)) == (
        400,
        "user_verification_missing",
    )
    assert RecoveryRequest.objects.count() == 0


def test_approving_refusals_and_too_many_wrong_codes(people: dict[str, Person]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_guardian(alice, bob)
    _device, recovery = start(alice)
    url = f"/api/v1/recoveries/{recovery['id']}/approve"
    # Not a guardian of this account.
    assert code_of(carol.post(url, {"code": recovery["code"]})) == (404, "recovery_not_found")
    wrong = "999999" if recovery["code"].replace(" ", "") != "999999" else "888888"
    for attempt in range(1, 5):
        response = bob.post(url, {"code": wrong})
        assert code_of(response) == (400, "code_mismatch")
        assert response.json()["attempts_left"] == 5 - attempt
    assert code_of(bob.post(url, {"code": wrong})) == (400, "code_mismatch")
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.DISCARDED
    assert request.end_reason == "too_many_codes"
    assert code_of(bob.post(url, {"code": recovery["code"]})) == (409, "recovery_not_pending")


def test_one_guardian_approves_at_a_time(people: dict[str, Person]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_guardian(alice, bob)
    make_guardian(alice, carol)
    _device, recovery = start(alice)
    url = f"/api/v1/recoveries/{recovery['id']}/approve"
    assert bob.post(url, {"code": recovery["code"]}).status_code == 201
    assert code_of(carol.post(url, {"code": recovery["code"]})) == (
        409,
        "recovery_already_approved",
    )


def test_a_guardian_starts_at_most_one_recovery_per_account_per_72_hours(
    people: dict[str, Person], settings: Any
) -> None:
    settings.RECOVERY_DISCARD_COOLDOWN_SECONDS = 0  # the cooldown is the next test's
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_guardian(alice, bob)
    make_guardian(alice, carol)
    _device, first = start(alice)
    approved = bob.post(f"/api/v1/recoveries/{first['id']}/approve", {"code": first["code"]})
    assert bob.approve(approved.json()["operation"]) == Status.CONFIRMED
    discarded = alice.post(f"/api/v1/recoveries/{first['id']}/discard")
    assert alice.approve(discarded.json()["operation"]) == Status.CONFIRMED
    assert RecoveryRequest.objects.get(public_id=first["id"]).status == "discarded"

    _device, second = start(alice)
    url = f"/api/v1/recoveries/{second['id']}/approve"
    assert code_of(bob.post(url, {"code": second["code"]})) == (409, "guardian_recovery_limit")
    assert carol.post(url, {"code": second["code"]}).status_code == 201


def test_a_guardian_whose_recovery_was_cancelled_waits_out_the_cooldown(
    people: dict[str, Person], settings: Any
) -> None:
    settings.RECOVERY_GUARDIAN_LIMIT_SECONDS = 0  # only the cooldown refuses here
    alice, bob = people["alice"], people["bob"]
    make_guardian(alice, bob)
    _device, first = start(alice)
    approved = bob.post(f"/api/v1/recoveries/{first['id']}/approve", {"code": first["code"]})
    assert bob.approve(approved.json()["operation"]) == Status.CONFIRMED
    discarded = alice.post(f"/api/v1/recoveries/{first['id']}/discard")
    assert alice.approve(discarded.json()["operation"]) == Status.CONFIRMED

    _device, second = start(alice)
    url = f"/api/v1/recoveries/{second['id']}/approve"
    refused = bob.post(url, {"code": second["code"]})
    assert code_of(refused) == (409, "guardian_cooldown")
    assert refused.json()["retry_after"] > timezone.now().isoformat()
    assert RecoveryRequest.objects.get(public_id=second["id"]).initiate_operation is None
    # Once the cooldown is over, the same guardian may start it.
    RecoveryRequest.objects.filter(public_id=first["id"]).update(
        ended_at=timezone.now() - timedelta(seconds=settings.RECOVERY_DISCARD_COOLDOWN_SECONDS + 1)
    )
    assert bob.post(url, {"code": second["code"]}).status_code == 201


def test_a_guardian_refuses(people: dict[str, Person]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    make_guardian(alice, bob)
    device, recovery = start(alice)
    assert code_of(carol.post(f"/api/v1/recoveries/{recovery['id']}/refuse")) == (
        404,
        "recovery_not_found",
    )
    refused = bob.post(f"/api/v1/recoveries/{recovery['id']}/refuse")
    assert refused.status_code == 200
    shown = device.client.get(f"/api/v1/recoveries/{recovery['id']}").json()
    assert (shown["status"], shown["end_reason"]) == ("discarded", "refused_by_guardian")
    assert code_of(bob.post(f"/api/v1/recoveries/{recovery['id']}/refuse")) == (
        409,
        "recovery_not_pending",
    )


def test_discarding_refusals_and_a_discard_before_anything_is_on_chain(
    people: dict[str, Person],
) -> None:
    alice, bob = people["alice"], people["bob"]
    make_guardian(alice, bob)
    _device, recovery = start(alice)
    url = f"/api/v1/recoveries/{recovery['id']}/discard"
    assert code_of(bob.post(url)) == (404, "recovery_not_found")
    # Bob started approving but has not signed: the owner's cancel withdraws his operation.
    approved = bob.post(f"/api/v1/recoveries/{recovery['id']}/approve", {"code": recovery["code"]})
    operation_id = approved.json()["operation"]["id"]
    cancelled = alice.post(url)
    assert cancelled.status_code == 200, cancelled.content
    assert cancelled.json()["operation"] is None
    assert cancelled.json()["recovery"]["status"] == "discarded"
    assert ChainOperation.objects.get(pk=operation_id).status == Status.EXPIRED
    assert code_of(bob.post(f"/api/v1/operations/{operation_id}/options")) == (
        410,
        "operation_expired",
    )
    assert code_of(alice.post(url)) == (409, "recovery_not_pending")
    assert code_of(
        alice.post("/api/v1/recoveries/00000000-0000-0000-0000-000000000000/discard")
    ) == (
        404,
        "recovery_not_found",
    )


def test_guardian_refusals_on_accept_and_remove(people: dict[str, Person]) -> None:
    alice, bob, carol = people["alice"], people["bob"], people["carol"]
    proposed = alice.post("/api/v1/guardians", {"username": "bob"}).json()
    guardian_id = proposed["guardian"]["id"]
    assert code_of(carol.post(f"/api/v1/guardians/{guardian_id}/accept")) == (
        404,
        "guardian_not_found",
    )
    assert code_of(carol.client.delete(f"/api/v1/guardians/{guardian_id}")) == (
        404,
        "guardian_not_found",
    )
    # Withdrawn before Alice approved it: removed at once, the operation expired.
    withdrawn = alice.client.delete(f"/api/v1/guardians/{guardian_id}")
    assert withdrawn.status_code == 200 and withdrawn.json()["guardian"]["status"] == "removed"
    assert ChainOperation.objects.get(pk=proposed["operation"]["id"]).status == Status.EXPIRED
    assert code_of(alice.client.delete(f"/api/v1/guardians/{guardian_id}")) == (
        409,
        "guardian_removed",
    )
    assert code_of(bob.post(f"/api/v1/guardians/{guardian_id}/accept")) == (409, "guardian_removed")

    # Removing an active guardian goes through the chain.
    active = make_guardian(alice, bob)
    assert code_of(bob.post(f"/api/v1/guardians/{active}/accept")) == (
        409,
        "guardian_already_active",
    )
    removing = alice.client.delete(f"/api/v1/guardians/{active}")
    assert removing.status_code == 202
    assert Guardian.objects.get(pk=active).status == Guardian.Status.ACTIVE
    assert alice.approve(removing.json()["operation"]) == Status.CONFIRMED
    assert Guardian.objects.get(pk=active).status == Guardian.Status.REMOVED


def test_a_request_no_guardian_approves_expires(people: dict[str, Person]) -> None:
    alice, bob = people["alice"], people["bob"]
    make_guardian(alice, bob)
    device, recovery = start(alice)
    assert run_deadlines().expired == 0
    RecoveryRequest.objects.update(approval_deadline=timezone.now())
    assert run_deadlines().expired == 1
    shown = device.client.get(f"/api/v1/recoveries/{recovery['id']}").json()
    assert (shown["status"], shown["end_reason"]) == ("expired", "not_approved_in_time")


def test_unauthenticated_callers_cannot_act(people: dict[str, Person]) -> None:
    device = Recovery()
    assert device.client.get("/api/v1/guardians").status_code == 401
    fake = "00000000-0000-0000-0000-000000000000"
    assert (
        device.client.post(f"/api/v1/recoveries/{fake}/approve", {"code": "1"}).status_code == 401
    )
    assert code_of(device.client.get(f"/api/v1/recoveries/{fake}")) == (404, "recovery_not_found")
