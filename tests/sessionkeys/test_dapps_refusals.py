"""Every refusal of a dapp's calls: a 4xx with a stable code, no bundle and no operation created,
nothing sent; the same idempotency key never makes a second operation."""

import secrets
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from chain.models import ChainOperation, Deployment
from domains.services import set_lockdown
from sessionkeys.models import CallBundle
from tests.sessionkeys.conftest import DAPP, RECIPIENT, World

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

PREVIEW, CREATE = "/api/v1/dapps/calls/preview", "/api/v1/dapps/calls"
SEND = [{"to": RECIPIENT, "value": "1000"}]


def ask(world: World, path: str, calls: Any = SEND, origin: str = DAPP, **extra: Any) -> Any:
    body = {"origin": origin, "calls": calls, **extra}
    if path == CREATE:
        body.setdefault("idempotency_key", secrets.token_hex(8))
    return world.client.post(path, body, format="json")


def connect(world: World) -> None:
    answer = world.client.post("/api/v1/dapps/connect", {"origin": DAPP}, format="json")
    assert answer.status_code == 200, answer.content


def nothing_created() -> None:
    assert not CallBundle.objects.exists()
    assert not ChainOperation.objects.filter(kind="dapp.calls").exists()


def refused(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, answer.json().get("code")) == (status, code), answer.content


@pytest.mark.parametrize("path", [PREVIEW, CREATE])
def test_calls_from_a_dapp_that_is_not_connected_are_refused(world: World, path: str) -> None:
    refused(ask(world, path), 403, "not_connected")
    connect(world)
    world.client.post("/api/v1/dapps/disconnect", {"origin": DAPP}, format="json")
    refused(ask(world, path), 403, "not_connected")
    # Connected elsewhere is not connected here.
    connect(world)
    refused(ask(world, path, origin="https://other.example"), 403, "not_connected")
    nothing_created()
    if path == CREATE:
        reasons = AuditEvent.objects.filter(user=world.user, kind="dapp_calls_refused")
        assert [e.details["reason"] for e in reasons] == ["not_connected"] * 3


@pytest.mark.parametrize("path", [PREVIEW, CREATE])
@pytest.mark.parametrize(
    "calls",
    [
        [],
        [{"to": RECIPIENT}] * 17,
        [{"to": "0x1234"}],
        [{"to": RECIPIENT, "data": "0xabc"}],
        [{"to": RECIPIENT, "data": "beef"}],
        [{"to": RECIPIENT, "value": "-1"}],
        [{"to": RECIPIENT, "value": "ten"}],
        [{"to": RECIPIENT, "value": hex(2**256)}],
        [{"to": RECIPIENT, "value": 5}],
        "not a list",
        [{"value": "1"}],
    ],
)
def test_malformed_calls_are_refused(world: World, path: str, calls: Any) -> None:
    connect(world)
    refused(ask(world, path, calls), 400, "invalid_calls")
    nothing_created()


@pytest.mark.parametrize("path", [PREVIEW, CREATE])
@pytest.mark.parametrize("origin", ["http://localhost:8000", "ftp://x.example", "x.example", 7])
def test_an_origin_that_is_no_dapps_is_refused(world: World, path: str, origin: Any) -> None:
    connect(world)
    refused(ask(world, path, origin=origin), 400, "invalid_origin")
    nothing_created()


def test_creating_needs_an_idempotency_key(world: World) -> None:
    connect(world)
    answer = world.client.post(CREATE, {"origin": DAPP, "calls": SEND}, format="json")
    refused(answer, 400, "invalid_request")
    nothing_created()


def test_the_same_idempotency_key_gives_the_same_bundle(world: World) -> None:
    connect(world)
    first = ask(world, CREATE, idempotency_key="same")
    again = ask(world, CREATE, idempotency_key="same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    other = ask(world, CREATE, [{"to": RECIPIENT, "value": "1"}], idempotency_key="same")
    refused(other, 409, "idempotency_key_reused")
    assert CallBundle.objects.count() == 1
    assert ChainOperation.objects.filter(kind="dapp.calls").count() == 1


@pytest.mark.parametrize("path", [PREVIEW, CREATE])
def test_ownership_changes_are_refused_under_lockdown(world: World, path: str) -> None:
    connect(world)
    validator = Deployment.objects.get(name="WebAuthnValidator").address
    change = [{"to": validator, "data": "0x12345678"}]
    set_lockdown(enabled=True, reason="registrar changed", actor=None, client=None)
    try:
        refused(ask(world, path, change), 423, "lockdown")
        refused(ask(world, path, [{"to": world.account.address, "data": "0x"}]), 423, "lockdown")
        nothing_created()
        assert AuditEvent.objects.filter(
            user=world.user, kind="action_refused", details__action="sponsor.ownership_call"
        ).exists()
        # Other calls go on.
        assert ask(world, path).status_code in (200, 201)
    finally:
        set_lockdown(enabled=False, reason="resolved", actor=None, client=None)


def test_calls_need_a_deployed_account(world: World) -> None:
    from accounts.models import SmartAccount

    connect(world)
    SmartAccount.objects.filter(pk=world.account.pk).update(
        status=SmartAccount.Status.COUNTERFACTUAL
    )
    refused(ask(world, PREVIEW), 409, "account_not_deployed")
    refused(ask(world, CREATE), 409, "account_not_deployed")
    nothing_created()


def test_calls_need_a_signed_in_person(world: World) -> None:
    connect(world)
    for path in (PREVIEW, CREATE):
        answer = APIClient().post(path, {"origin": DAPP, "calls": SEND}, format="json")
        assert answer.status_code in (401, 403)
    nothing_created()


@pytest.mark.parametrize("bundle_id", ["0x" + "ab" * 32, "0x12", "nothex", "0x" + "zz" * 32])
def test_the_status_of_unknown_calls_is_404(world: World, bundle_id: str) -> None:
    answer = world.relay.get(f"/api/v1/dapps/calls/{bundle_id}")
    refused(answer, 404, "unknown_calls")
    assert answer["Access-Control-Allow-Origin"] == "*"


def test_a_bundle_whose_approval_expired_is_failed_off_chain(world: World) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from chain.pipeline.tick import expire_operations

    connect(world)
    created = ask(world, CREATE).json()
    ChainOperation.objects.filter(pk=created["operation"]["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_operations() == 1
    status = world.relay.get(f"/api/v1/dapps/calls/{created['id']}").json()
    assert (status["status"], status["receipts"]) == (400, [])
