"""`/api/v1/passkeys` and `/api/v1/auth/reauth`: managing one's passkeys, in sudo mode."""

import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenReauthentication, User
from chain.devtools.authenticator import SoftAuthenticator, b64url
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

CATALOG = Path(__file__).resolve().parents[1] / "fixtures" / "aaguids.json"
ICLOUD = uuid.UUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")


class Account:
    """A signed-up user seen from an API client: their token and their authenticator."""

    def __init__(self, client: APIClient, token: str, authenticator: SoftAuthenticator) -> None:
        self.client = client
        self.token = token
        self.authenticator = authenticator
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, url: str) -> Any:
        return self.client.get(url, headers=self.headers)

    def post(self, url: str, body: Any = None) -> Any:
        return self.client.post(url, body or {}, format="json", headers=self.headers)

    def patch(self, url: str, body: Any) -> Any:
        return self.client.patch(url, body, format="json", headers=self.headers)

    def delete(self, url: str) -> Any:
        return self.client.delete(url, headers=self.headers)

    def expire_reauthentication(self) -> None:
        """As if the sign-in and any later confirmation were six minutes ago."""
        six_minutes_ago = timezone.now() - timedelta(minutes=6)
        AuthToken.objects.filter(token_key=self.token[:15]).update(created=six_minutes_ago)
        TokenReauthentication.objects.filter(token__token_key=self.token[:15]).update(
            verified_at=six_minutes_ago
        )

    def reauthenticate(self) -> Any:
        options = self.post("/api/v1/auth/reauth/options").json()
        return self.post(
            "/api/v1/auth/reauth/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": self.authenticator.get(options["publicKey"]),
            },
        )

    def add_passkey(self, authenticator: SoftAuthenticator, **body: Any) -> Any:
        options = self.post("/api/v1/passkeys/register/options").json()
        return self.post(
            "/api/v1/passkeys/register/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.create(options["publicKey"]),
                **body,
            },
        )


@pytest.fixture
def make_account(api_client: APIClient, db: None) -> Any:
    def _make(username: str, **authenticator_options: Any) -> Account:
        authenticator = SoftAuthenticator(**authenticator_options)
        options = api_client.post(
            "/api/v1/auth/register/options", {"username": username}, format="json"
        ).json()
        response = api_client.post(
            "/api/v1/auth/register/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.create(options["publicKey"]),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        return Account(api_client, response.json()["token"], authenticator)

    return _make


@pytest.fixture
def alice(make_account: Any) -> Account:
    return make_account("alice")  # type: ignore[no-any-return]


# --- re-authentication -------------------------------------------------------------------------


def test_reauth_options_list_the_users_passkeys(alice: Account) -> None:
    response = alice.post("/api/v1/auth/reauth/options")

    assert response.status_code == 200
    allowed = response.json()["publicKey"]["allowCredentials"]
    credential_id = bytes(Passkey.objects.get().credential_id)
    assert [c["id"] for c in allowed] == [b64url(credential_id)]
    assert response.json()["publicKey"]["userVerification"] == "required"


def test_reauth_makes_the_token_fresh_for_five_minutes(alice: Account) -> None:
    alice.expire_reauthentication()
    before = timezone.now()

    response = alice.reauthenticate()

    assert response.status_code == 200, response.content
    until = response.json()["reauthenticated_until"]
    assert before + timedelta(minutes=5) <= datetime.fromisoformat(until)
    assert AuditEvent.objects.filter(kind="reauthenticated").count() == 1
    assert alice.post("/api/v1/passkeys/register/options").status_code == 200


def test_reauth_with_another_users_passkey_is_refused(alice: Account, make_account: Any) -> None:
    bob = make_account("bob")
    alice.expire_reauthentication()
    options = alice.post("/api/v1/auth/reauth/options").json()

    credential = bob.authenticator.get({"challenge": options["publicKey"]["challenge"]})
    response = alice.post(
        "/api/v1/auth/reauth/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
    )

    assert response.status_code == 400
    assert response.json()["code"] == "credential_not_allowed"
    assert alice.post("/api/v1/passkeys/register/options").json()["code"] == (
        "reauthentication_required"
    )


def test_reauth_ceremony_of_another_user_is_not_found(alice: Account, make_account: Any) -> None:
    bob = make_account("bob")
    bobs = bob.post("/api/v1/auth/reauth/options").json()

    response = alice.post(
        "/api/v1/auth/reauth/verify",
        {
            "ceremony_id": bobs["ceremony_id"],
            "credential": alice.authenticator.get({"challenge": bobs["publicKey"]["challenge"]}),
        },
    )

    assert response.status_code == 404
    assert response.json()["code"] == "ceremony_not_found"


def test_reauth_needs_a_signed_in_user(api_client: APIClient) -> None:
    assert api_client.post("/api/v1/auth/reauth/options", {}, format="json").status_code == 401


def test_failed_reauth_is_audited(alice: Account) -> None:
    options = alice.post("/api/v1/auth/reauth/options").json()
    alice.post(
        "/api/v1/auth/reauth/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": alice.authenticator.get(options["publicKey"], tamper_signature=True),
        },
    )

    event = AuditEvent.objects.get(kind="login_failed")
    assert event.details == {"reason": "invalid_signature", "during": "reauthentication"}


# --- listing -------------------------------------------------------------------------------------


def test_list_shows_each_passkey_for_what_it_is(make_account: Any) -> None:
    call_command("import_aaguids", str(CATALOG))
    account = make_account("carol", aaguid=ICLOUD.bytes, backup_eligible=True, backed_up=True)

    response = account.get("/api/v1/passkeys")

    assert response.status_code == 200
    [passkey] = response.json()
    assert set(passkey) == {
        "id",
        "name",
        "provider",
        "aaguid",
        "device_type",
        "backed_up",
        "onchain",
        "transports",
        "created_at",
        "last_used_at",
    }
    assert passkey["name"] == "iCloud Keychain"
    assert passkey["provider"]["name"] == "iCloud Keychain"
    assert passkey["provider"]["icon_light"].startswith("data:image/svg+xml")
    assert passkey["aaguid"] == str(ICLOUD)
    assert passkey["device_type"] == "multi_device"
    assert passkey["backed_up"] is True


def test_unknown_provider_is_null_and_named_passkey(alice: Account) -> None:
    [passkey] = alice.get("/api/v1/passkeys").json()

    assert passkey["provider"] is None
    assert passkey["name"] == "Passkey"
    assert passkey["device_type"] == "single_device"
    assert passkey["aaguid"] is None


def test_list_shows_only_ones_own(alice: Account, make_account: Any) -> None:
    make_account("bob")

    assert len(alice.get("/api/v1/passkeys").json()) == 1


# --- adding --------------------------------------------------------------------------------------


def test_add_a_second_passkey(
    alice: Account, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    User.objects.filter(username="alice").update(email="alice@example.com")
    options = alice.post("/api/v1/passkeys/register/options", {"hints": ["security-key"]}).json()[
        "publicKey"
    ]
    assert [c["id"] for c in options["excludeCredentials"]] == [
        b64url(bytes(Passkey.objects.get().credential_id))
    ]
    assert options["hints"] == ["security-key"]
    assert options["user"]["id"] == b64url(bytes(User.objects.get().user_handle))

    with django_capture_on_commit_callbacks(execute=True):
        response = alice.add_passkey(SoftAuthenticator(), name="YubiKey")

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "YubiKey"
    assert Passkey.objects.filter(user__username="alice").count() == 2
    assert AuditEvent.objects.filter(kind="passkey_added").count() == 1
    [email] = mail.outbox
    assert email.to == ["alice@example.com"]
    assert "YubiKey" in email.body


def test_default_names_follow_the_provider_with_a_suffix(make_account: Any) -> None:
    call_command("import_aaguids", str(CATALOG))
    account = make_account("dave", aaguid=ICLOUD.bytes)

    account.add_passkey(SoftAuthenticator(aaguid=ICLOUD.bytes))
    account.add_passkey(SoftAuthenticator(aaguid=ICLOUD.bytes))
    account.add_passkey(SoftAuthenticator())

    names = [p["name"] for p in account.get("/api/v1/passkeys").json()]
    assert names == ["iCloud Keychain", "iCloud Keychain 2", "iCloud Keychain 3", "Passkey"]


def test_adding_needs_a_fresh_reauthentication(alice: Account) -> None:
    alice.expire_reauthentication()

    for url in ("/api/v1/passkeys/register/options", "/api/v1/passkeys/register/verify"):
        response = alice.post(url)
        assert response.status_code == 403
        assert response.json()["code"] == "reauthentication_required"

    assert alice.reauthenticate().status_code == 200
    assert alice.add_passkey(SoftAuthenticator()).status_code == 201


def test_adding_a_passkey_already_registered_is_refused(alice: Account) -> None:
    options = alice.post("/api/v1/passkeys/register/options").json()
    existing = next(iter(alice.authenticator.credentials))

    response = alice.post(
        "/api/v1/passkeys/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": alice.authenticator.create(options["publicKey"], reuse=existing),
        },
    )

    assert response.status_code == 409
    assert response.json()["code"] == "credential_already_registered"


def test_add_ceremony_of_another_user_is_not_found(alice: Account, make_account: Any) -> None:
    bob = make_account("bob")
    bobs = bob.post("/api/v1/passkeys/register/options").json()

    response = alice.post(
        "/api/v1/passkeys/register/verify",
        {
            "ceremony_id": bobs["ceremony_id"],
            "credential": SoftAuthenticator().create(bobs["publicKey"]),
        },
    )

    assert response.status_code == 404
    assert Passkey.objects.count() == 2


def test_add_refuses_an_unknown_hint(alice: Account) -> None:
    response = alice.post("/api/v1/passkeys/register/options", {"hints": ["telepathy"]})

    assert response.status_code == 400
    assert "hints" in response.json()["errors"]


# --- renaming ------------------------------------------------------------------------------------


def test_rename(alice: Account) -> None:
    passkey_id = Passkey.objects.get().pk

    response = alice.patch(f"/api/v1/passkeys/{passkey_id}", {"name": "  Work laptop  "})

    assert response.status_code == 200
    assert response.json()["name"] == "Work laptop"
    assert Passkey.objects.get().name == "Work laptop"
    event = AuditEvent.objects.get(kind="passkey_renamed")
    assert event.details["old_name"] == "Passkey"


@pytest.mark.parametrize(
    "name", ["", "   ", "x" * 65, "tab\there", "new\nline", "zero\u200bwidth", None, 5, ["a"]]
)
def test_bad_names_are_refused(alice: Account, name: Any) -> None:
    passkey_id = Passkey.objects.get().pk

    response = alice.patch(f"/api/v1/passkeys/{passkey_id}", {"name": name})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "name" in response.json()["errors"]
    assert Passkey.objects.get().name == "Passkey"


# --- deleting ------------------------------------------------------------------------------------


def test_delete_one_of_two(
    alice: Account, celery_eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    User.objects.filter(username="alice").update(email="alice@example.com")

    with django_capture_on_commit_callbacks(execute=True):
        second = alice.add_passkey(SoftAuthenticator()).json()["id"]
        response = alice.delete(f"/api/v1/passkeys/{second}")

    assert response.status_code == 204
    assert Passkey.objects.count() == 1
    assert AuditEvent.objects.filter(kind="passkey_deleted").count() == 1
    assert [m.subject for m in mail.outbox] == [
        "A passkey was added to your account",
        "A passkey was removed from your account",
    ]


def test_the_last_passkey_cannot_be_deleted(alice: Account) -> None:
    response = alice.delete(f"/api/v1/passkeys/{Passkey.objects.get().pk}")

    assert response.status_code == 409
    assert response.json()["code"] == "last_passkey"
    assert Passkey.objects.count() == 1


def test_delete_needs_a_fresh_reauthentication(alice: Account) -> None:
    second = alice.add_passkey(SoftAuthenticator()).json()["id"]
    alice.expire_reauthentication()

    response = alice.delete(f"/api/v1/passkeys/{second}")

    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert Passkey.objects.count() == 2


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
def test_another_users_passkey_is_404(alice: Account, make_account: Any, method: str) -> None:
    make_account("bob")
    bobs = Passkey.objects.get(user__username="bob").pk
    url = f"/api/v1/passkeys/{bobs}"

    response = (
        alice.patch(url, {"name": "mine"}) if method == "patch" else getattr(alice, method)(url)
    )

    assert response.status_code == 404
    assert response.json()["code"] in ("passkey_not_found", "not_found")
    assert Passkey.objects.get(pk=bobs).name == "Passkey"


def test_unknown_passkey_id_is_404(alice: Account) -> None:
    assert alice.get("/api/v1/passkeys/999999").status_code == 404


def test_management_needs_a_signed_in_user(api_client: APIClient) -> None:
    assert api_client.get("/api/v1/passkeys").status_code == 401
    assert api_client.delete("/api/v1/passkeys/1").status_code == 401
