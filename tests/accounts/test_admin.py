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
