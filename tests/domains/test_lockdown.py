"""The lockdown: while it is on, every wired sensitive action is refused with 423 `lockdown` and
nothing is written; every page says so; signed-up people are emailed once."""

from typing import Any

import pytest
from django.core import mail
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from chain.devtools.authenticator import SoftAuthenticator
from domains.models import Lockdown
from domains.services import set_lockdown
from passkeys.models import Ceremony, Passkey
from portal.errors import PortalError
from portal.guards import SENSITIVE_ACTIONS, check_sensitive_action

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(sign_up: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_up('alice')['token']}"}


def lock(reason: str = "registrar changed") -> Lockdown:
    return set_lockdown(enabled=True, reason=reason, actor=None, client=None)


def assert_locked(response: Any, action: str | None = None) -> None:
    assert response.status_code == 423, response.content
    assert response.json()["code"] == "lockdown"
    if action is not None:  # the person's activity log shows the refusal
        refused = AuditEvent.objects.filter(kind="action_refused").latest("created_at")
        assert refused.details == {"reason": "lockdown", "action": action}
        assert refused.user == User.objects.get()


def test_adding_a_passkey_is_refused(api_client: APIClient, alice: dict[str, str]) -> None:
    lock()
    assert_locked(
        api_client.post("/api/v1/passkeys/register/options", {}, format="json", headers=alice),
        "passkey.add",
    )
    assert not Ceremony.objects.filter(purpose="add_passkey").exists()


def test_finishing_a_passkey_addition_started_before_the_lockdown_is_refused(
    api_client: APIClient, alice: dict[str, str], authenticator: SoftAuthenticator
) -> None:
    options = api_client.post(
        "/api/v1/passkeys/register/options", {}, format="json", headers=alice
    ).json()
    lock()

    response = api_client.post(
        "/api/v1/passkeys/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": SoftAuthenticator().create(options["publicKey"]),
        },
        format="json",
        headers=alice,
    )

    assert_locked(response, "passkey.add")
    assert Passkey.objects.count() == 1
    assert Ceremony.objects.get(ceremony_id=options["ceremony_id"]).consumed_at is None


def test_removing_a_passkey_is_refused(api_client: APIClient, alice: dict[str, str]) -> None:
    user = User.objects.get()
    first = Passkey.objects.get()
    Passkey.objects.create(
        user=user, name="second", credential_id=b"second", public_key=first.public_key
    )
    lock()

    response = api_client.delete(f"/api/v1/passkeys/{first.pk}", headers=alice)

    assert_locked(response, "passkey.remove")
    assert Passkey.objects.count() == 2
    assert not AuditEvent.objects.filter(kind="passkey_deleted").exists()


def test_changing_the_email_is_refused(api_client: APIClient, alice: dict[str, str]) -> None:
    lock()
    response = api_client.patch(
        "/api/v1/me", {"email": "mallory@example.com"}, format="json", headers=alice
    )
    assert_locked(response, "account.email_change")
    assert User.objects.get().email == ""


def test_changing_the_display_name_still_works(
    api_client: APIClient, alice: dict[str, str]
) -> None:
    lock()
    response = api_client.patch(
        "/api/v1/me", {"display_name": "Alice"}, format="json", headers=alice
    )
    assert response.status_code == 200


@pytest.mark.parametrize("action", SENSITIVE_ACTIONS)
def test_every_named_action_is_refused_and_allowed_again_after(action: str) -> None:
    lock()
    with pytest.raises(PortalError) as refused:
        check_sensitive_action(action=action)
    assert (refused.value.status_code, refused.value.code) == (423, "lockdown")
    set_lockdown(enabled=False, reason="", actor=None, client=None)
    check_sensitive_action(action=action)


def test_an_unknown_action_name_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown sensitive action"):
        check_sensitive_action(action="passkey.ad")


def test_every_page_shows_a_banner(client: Client) -> None:
    assert b'id="lockdown-banner"' not in client.get("/login").content
    lock()
    for path in ("/login", "/signup"):
        page = client.get(path).content.decode()
        assert 'id="lockdown-banner"' in page and "locked down" in page, path


def test_signed_up_people_are_emailed_once(
    celery_eager: None, django_capture_on_commit_callbacks: Any, sign_up: Any
) -> None:
    sign_up("alice")
    sign_up("bob")
    User.objects.filter(username="alice").update(email="alice@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        lock()
        lock("again")  # already on: nothing new

    assert [m.to for m in mail.outbox] == [["alice@example.com"]]
    assert "locked down" in mail.outbox[0].subject
    assert Lockdown.objects.get().reason == "registrar changed"
    event = AuditEvent.objects.get(kind="lockdown_changed")
    assert event.details == {"enabled": True, "reason": "registrar changed", "automatic": False}


def test_turning_it_on_needs_a_reason() -> None:
    with pytest.raises(PortalError) as refused:
        set_lockdown(enabled=True, reason=" ", actor=None, client=None)
    assert refused.value.code == "reason_required"
    assert not Lockdown.objects.filter(enabled=True).exists()
