"""Connecting a dapp (eth_requestAccounts), listing, and disconnecting (wallet_disconnect and
from /account/sessions): who can, what is written, what is refused."""

import os
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from accounts.models import AuditEvent, SmartAccount
from sessionkeys.models import DappConnection

pytestmark = pytest.mark.django_db

DAPP = "http://localhost:8001"


def with_account(username: str) -> Any:
    """A person with a smart account not deployed yet (enough to connect and sign messages)."""
    user = get_user_model().objects.create_user(username)
    SmartAccount.objects.create(
        user=user,
        chain_id=31337,
        address="0x" + os.urandom(20).hex(),
        salt="0x" + "00" * 32,
        init_data=b"",
        deployer="0x" + "00" * 20,
    )
    return user


@pytest.fixture
def person() -> Any:
    user = with_account("rosa")
    client = APIClient()
    client.force_authenticate(user)
    return user, client


def connect(client: APIClient, origin: str = DAPP) -> Any:
    return client.post("/api/v1/dapps/connect", {"origin": origin}, format="json")


def test_connect_gives_the_smart_account_and_chain_and_is_audited(person: Any) -> None:
    user, client = person
    account = SmartAccount.objects.get(user=user)
    first = connect(client)
    assert first.status_code == 200, first.content
    body = first.json()
    assert body["accounts"] == [account.address]
    assert body["chainId"] == "0x7a69"
    assert body["origin"] == DAPP
    assert body["first_time"] is True
    again = connect(client)
    assert again.json()["first_time"] is False
    assert again.json()["id"] == body["id"]
    # Connecting an already connected dapp writes nothing new.
    events = AuditEvent.objects.filter(user=user, kind="dapp_connected")
    assert [e.details["origin"] for e in events] == [DAPP]


@pytest.mark.parametrize(
    "origin",
    [
        "localhost:8001",
        "http://localhost:8001/path",
        "javascript:alert(1)",
        "",
        "http://localhost:8000",
    ],
)
def test_an_origin_that_is_no_dapps_is_refused(person: Any, origin: str) -> None:
    _user, client = person
    refused = connect(client, origin)
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_origin"
    assert not DappConnection.objects.exists()


def test_a_person_without_a_smart_account_cannot_connect(person: Any) -> None:
    user, client = person
    SmartAccount.objects.filter(user=user).delete()
    refused = connect(client)
    assert (refused.status_code, refused.json()["code"]) == (409, "account_not_found")


def test_connecting_needs_a_signed_in_person() -> None:
    refused = connect(APIClient())
    assert refused.status_code in (401, 403)
    assert not DappConnection.objects.exists()


def test_list_shows_connected_dapps_with_what_they_were_allowed(person: Any) -> None:
    _user, client = person
    connect(client)
    connect(client, "https://game.example")
    listed = client.get("/api/v1/dapps")
    assert listed.status_code == 200
    origins = {item["origin"]: item for item in listed.json()}
    assert set(origins) == {DAPP, "https://game.example"}
    assert origins[DAPP]["allowed"] == {"sessions": [], "signed_messages": 0, "call_bundles": 0}
    assert origins[DAPP]["active"] is True


def test_wallet_disconnect_is_idempotent_and_audited(person: Any) -> None:
    user, client = person
    connect(client)
    for _ in range(2):
        gone = client.post("/api/v1/dapps/disconnect", {"origin": DAPP}, format="json")
        assert gone.status_code == 200, gone.content
    never = client.post("/api/v1/dapps/disconnect", {"origin": "https://x.example"}, format="json")
    assert never.status_code == 200
    assert client.get("/api/v1/dapps").json() == []
    assert AuditEvent.objects.filter(user=user, kind="dapp_disconnected").count() == 1
    # Connecting again re-activates the same connection, as a new connect.
    again = connect(client)
    assert again.json()["first_time"] is False
    assert AuditEvent.objects.filter(user=user, kind="dapp_connected").count() == 2


def test_disconnect_by_id_only_for_ones_own_connection(person: Any) -> None:
    _user, client = person
    mine = connect(client).json()["id"]
    mallory = APIClient()
    mallory.force_authenticate(with_account("mallory"))
    refused = mallory.post(f"/api/v1/dapps/{mine}/disconnect")
    assert (refused.status_code, refused.json()["code"]) == (404, "connection_not_found")
    assert DappConnection.objects.get(pk=mine).disconnected_at is None
    gone = client.post(f"/api/v1/dapps/{mine}/disconnect")
    assert gone.status_code == 200
    assert gone.json()["active"] is False


def test_the_sessions_page_lists_connected_dapps_with_a_disconnect_button(person: Any) -> None:
    user, client = person
    connection = connect(client).json()
    browser = APIClient()
    browser.force_login(user)
    page = browser.get("/account/sessions")
    assert page.status_code == 200
    html = page.content.decode()
    assert DAPP in html
    assert f"/account/dapps/{connection['id']}/disconnect" in html
    gone = browser.post(f"/account/dapps/{connection['id']}/disconnect")
    assert gone.status_code == 302
    assert DappConnection.objects.get(pk=connection["id"]).disconnected_at is not None
    assert DAPP not in browser.get("/account/sessions").content.decode()


def test_capabilities_are_public_with_cors() -> None:
    answer = APIClient().get("/api/v1/dapps/capabilities", HTTP_ORIGIN="https://game.example")
    assert answer.status_code == 200
    assert answer["Access-Control-Allow-Origin"] == "*"
    assert answer.json()["0x7a69"]["atomic"] == {"status": "supported"}
