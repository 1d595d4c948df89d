"""The admin console: passkey sign-in only, read-only audit log, no public keys on show."""

from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts.models import AuditEvent, User
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator(sign_up: Any) -> User:
    sign_up("operator")
    call_command("grantstaff", "operator", "--superuser")
    return User.objects.get(username="operator")


def test_admin_login_page_sends_operators_to_the_passkey_sign_in(client: Client) -> None:
    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 302
    assert response["Location"] == "/login?next=/admin/"


def test_grantstaff_is_audited_and_refuses_unknown_users(operator: User) -> None:
    assert operator.is_staff and operator.is_superuser
    assert AuditEvent.objects.filter(kind="staff_changed", user=operator).exists()
    with pytest.raises(CommandError):
        call_command("grantstaff", "nobody")


def test_audit_events_are_read_only(client: Client, operator: User) -> None:
    client.force_login(operator)
    event = AuditEvent.objects.filter(user=operator).first()
    assert event is not None

    assert client.get("/admin/accounts/auditevent/?kind__exact=signup").status_code == 200
    assert client.get("/admin/accounts/auditevent/add/").status_code == 403
    change = client.post(f"/admin/accounts/auditevent/{event.pk}/change/", {"kind": "logout"})
    assert change.status_code == 403
    assert (
        client.post(f"/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk, kind=event.kind).exists()


def test_passkey_page_hides_the_public_key_and_keeps_material_read_only(
    client: Client, operator: User
) -> None:
    client.force_login(operator)
    passkey = Passkey.objects.get(user=operator)

    page = client.get(f"/admin/passkeys/passkey/{passkey.pk}/change/")

    assert page.status_code == 200
    assert b"public_key" not in page.content
    assert b'name="credential_id' not in page.content
    client.post(
        f"/admin/passkeys/passkey/{passkey.pk}/change/",
        {"name": "Renamed by support", "sign_count": 999},
    )
    passkey.refresh_from_db()
    assert passkey.name == "Renamed by support"
    assert passkey.sign_count == 0


def test_non_staff_cannot_use_the_admin(client: Client, sign_up: Any) -> None:
    sign_up("alice")
    client.force_login(User.objects.get(username="alice"))

    response = client.get("/admin/accounts/auditevent/")

    assert response.status_code == 302
    assert "/login" in response["Location"]


# --- deleting a passkey in the admin: the same service as the person's own ---------------------


@pytest.fixture
def alice_with_two(sign_up: Any, authenticator: Any, api_client: Any) -> tuple[User, str]:
    token = sign_up("alice")["token"]
    headers = {"Authorization": f"Bearer {token}"}
    options = api_client.post(
        "/api/v1/passkeys/register/options", {}, format="json", headers=headers
    ).json()
    from chain.devtools.authenticator import SoftAuthenticator

    added = api_client.post(
        "/api/v1/passkeys/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": SoftAuthenticator().create(options["publicKey"]),
            "name": "Phone",
        },
        format="json",
        headers=headers,
    )
    assert added.status_code == 201
    User.objects.filter(username="alice").update(email="alice@example.com")
    return User.objects.get(username="alice"), token


def test_an_operator_deleting_a_passkey_goes_through_the_service(
    client: Client,
    operator: User,
    alice_with_two: tuple[User, str],
    api_client: Any,
    celery_eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.core import mail

    alice, token = alice_with_two
    first = Passkey.objects.get(user=alice, name="Passkey")
    client.force_login(operator)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/admin/passkeys/passkey/{first.pk}/delete/", {"post": "yes"})

    assert response.status_code == 302
    assert not Passkey.objects.filter(pk=first.pk).exists()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.PASSKEY_DELETED)
    assert event.user == alice
    assert event.details["by_staff"] == "operator"
    assert [m.subject for m in mail.outbox] == ["A passkey was removed from your account"]
    # The sign-up's token was signed in with it: it ended too.
    me = api_client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_an_operator_cannot_delete_the_last_passkey(client: Client, operator: User) -> None:
    client.force_login(operator)
    only = Passkey.objects.get(user=operator)

    response = client.post(
        f"/admin/passkeys/passkey/{only.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert response.status_code == 200
    assert Passkey.objects.filter(pk=only.pk).exists()
    assert "only passkey" in response.content.decode()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.PASSKEY_DELETED).exists()


def test_the_admin_offers_no_bulk_deletion_of_passkeys(
    client: Client, operator: User, alice_with_two: tuple[User, str]
) -> None:
    client.force_login(operator)
    ids = list(Passkey.objects.values_list("pk", flat=True))

    page = client.get("/admin/passkeys/passkey/")
    client.post(
        "/admin/passkeys/passkey/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )

    assert "delete_selected" not in page.content.decode()
    assert Passkey.objects.count() == len(ids)
