"""A connected dapp's messages (signatures/options|verify with its `origin`) and the popup's
lookup of a session by its permission context (wallet_revokeExecutionPermission)."""

from typing import Any

import pytest

from accounts.models import AuditEvent
from passkeys.models import SignatureRequest
from tests.sessionkeys.conftest import DAPP, World

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

OPTIONS, VERIFY = "/api/v1/signatures/options", "/api/v1/signatures/verify"


def options(world: World, **body: Any) -> Any:
    return world.client.post(
        OPTIONS, {"kind": "personal_sign", "message": "hi", **body}, format="json"
    )


def connect(world: World) -> None:
    answer = world.client.post("/api/v1/dapps/connect", {"origin": DAPP}, format="json")
    assert answer.status_code == 200, answer.content


def test_a_message_for_a_connected_dapp_records_its_origin(world: World) -> None:
    connect(world)
    asked = options(world, origin=DAPP)
    assert asked.status_code == 200, asked.content
    assert asked.json()["request"]["origin"] == DAPP
    credential = world.kit.authenticator.get(asked.json()["publicKey"])
    signed = world.client.post(
        VERIFY,
        {"ceremony_id": asked.json()["ceremony_id"], "credential": credential},
        format="json",
    )
    assert signed.status_code == 200, signed.content
    assert signed.json()["origin"] == DAPP
    event = AuditEvent.objects.get(user=world.user, kind="message_signed")
    assert event.details["origin"] == DAPP
    listed = world.client.get("/api/v1/dapps").json()
    assert listed[0]["allowed"]["signed_messages"] == 1
    assert listed[0]["last_used_at"] is not None


def test_a_message_without_an_origin_is_signed_as_before(world: World) -> None:
    asked = options(world)
    assert asked.status_code == 200, asked.content
    assert asked.json()["request"]["origin"] == ""


def test_a_message_for_a_dapp_not_connected_is_refused(world: World) -> None:
    refused = options(world, origin=DAPP)
    assert (refused.status_code, refused.json()["code"]) == (403, "not_connected")
    assert not SignatureRequest.objects.exists()


@pytest.mark.parametrize("origin", ["http://localhost:8000", "localhost", "http://x.example/a"])
def test_a_message_for_an_origin_that_is_no_dapps_is_refused(world: World, origin: str) -> None:
    refused = options(world, origin=origin)
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_origin")
    assert not SignatureRequest.objects.exists()


def test_a_dapp_disconnected_before_the_passkey_answered_gets_no_signature(world: World) -> None:
    connect(world)
    asked = options(world, origin=DAPP)
    credential = world.kit.authenticator.get(asked.json()["publicKey"])
    world.client.post("/api/v1/dapps/disconnect", {"origin": DAPP}, format="json")
    signed = world.client.post(
        VERIFY,
        {"ceremony_id": asked.json()["ceremony_id"], "credential": credential},
        format="json",
    )
    assert (signed.status_code, signed.json()["code"]) == (403, "not_connected")
    assert SignatureRequest.objects.get().signed_at is None
    assert AuditEvent.objects.filter(user=world.user, kind="message_refused").exists()


def test_the_popup_finds_a_session_by_its_permission_context(world: World) -> None:
    session = world.active_session()
    found = world.client.get("/api/v1/sessions", {"context": session["context"]})
    assert [s["id"] for s in found.json()] == [session["id"]]
    same_origin = world.client.get(
        "/api/v1/sessions", {"context": session["context"], "origin": DAPP}
    )
    assert [s["id"] for s in same_origin.json()] == [session["id"]]
    other_origin = world.client.get(
        "/api/v1/sessions", {"context": session["context"], "origin": "https://x.example"}
    )
    assert other_origin.json() == []
    unknown = world.client.get("/api/v1/sessions", {"context": "0x1234"})
    assert unknown.json() == []
    bad = world.client.get("/api/v1/sessions", {"context": "nothex"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_context")
