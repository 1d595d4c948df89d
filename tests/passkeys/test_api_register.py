"""`/api/v1/auth/register/{options,verify}`: sign-up over the API."""

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from chain.devtools.authenticator import SoftAuthenticator, unb64url
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

OPTIONS = "/api/v1/auth/register/options"
VERIFY = "/api/v1/auth/register/verify"


def start(api_client: APIClient, username: str = "alice", **body: Any) -> dict[str, Any]:
    response = api_client.post(OPTIONS, {"username": username, **body}, format="json")
    assert response.status_code == 200, response.content
    return dict(response.json())


def verify(api_client: APIClient, ceremony_id: str, credential: Any, **body: Any) -> Any:
    return api_client.post(
        VERIFY, {"ceremony_id": ceremony_id, "credential": credential, **body}, format="json"
    )


def test_options_ask_for_a_discoverable_verified_es256_passkey(api_client: APIClient) -> None:
    body = start(api_client, "Alice", display_name="Alice A.")
    options = body["publicKey"]

    assert set(body) == {"ceremony_id", "publicKey"}
    assert options["rp"] == {"id": "localhost", "name": "Passkey Portal"}
    assert options["user"]["name"] == "alice"
    assert options["user"]["displayName"] == "Alice A."
    assert options["pubKeyCredParams"] == [{"type": "public-key", "alg": -7}]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none"
    assert options["excludeCredentials"] == []
    assert options["timeout"] == 300_000
    assert len(base64.urlsafe_b64decode(options["challenge"] + "==")) == 32


def test_user_handle_is_random_and_not_derived_from_the_username(api_client: APIClient) -> None:
    first = start(api_client, "alice")["publicKey"]["user"]["id"]
    second = start(api_client, "alice")["publicKey"]["user"]["id"]

    handle = base64.urlsafe_b64decode(first + "==")
    assert len(handle) >= 16
    assert first != second
    assert b"alice" not in handle


def test_sign_up_creates_user_passkey_and_token(
    api_client: APIClient, authenticator: SoftAuthenticator
) -> None:
    body = start(api_client, "alice", display_name="Alice")
    response = verify(
        api_client,
        body["ceremony_id"],
        authenticator.create(body["publicKey"]),
        passkey_name="Laptop",
    )

    assert response.status_code == 201, response.content
    data = response.json()
    assert set(data) == {"token", "user", "passkey"}
    user = User.objects.get(username="alice")
    assert data["user"] == {"id": user.pk, "username": "alice", "display_name": "Alice"}
    assert data["passkey"]["name"] == "Laptop"
    assert data["passkey"]["device_type"] == "single_device"
    assert data["passkey"]["transports"] == ["hybrid", "internal"]
    assert not user.has_usable_password()
    passkey = Passkey.objects.get(user=user)
    assert bytes(user.user_handle) == base64.urlsafe_b64decode(
        body["publicKey"]["user"]["id"] + "=="
    )
    assert passkey.backup_eligible is False
    me = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {data['token']}")
    assert me.status_code == 200
    assert AuditEvent.objects.filter(user=user, kind="signup").count() == 1


def test_synced_passkey_is_recorded_as_multi_device(api_client: APIClient) -> None:
    authenticator = SoftAuthenticator(backup_eligible=True, backed_up=True)
    body = start(api_client)
    response = verify(api_client, body["ceremony_id"], authenticator.create(body["publicKey"]))

    assert response.json()["passkey"]["device_type"] == "multi_device"
    assert response.json()["passkey"]["backed_up"] is True


def test_taken_username_is_refused_case_insensitively(api_client: APIClient, sign_up: Any) -> None:
    sign_up("alice")

    response = api_client.post(OPTIONS, {"username": "ALICE"}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"


def test_username_taken_between_options_and_verify(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any
) -> None:
    body = start(api_client, "bob")
    sign_up("bob")

    response = verify(api_client, body["ceremony_id"], authenticator.create(body["publicKey"]))

    assert response.status_code == 409
    assert response.json()["code"] == "username_taken"
    assert User.objects.filter(username="bob").count() == 1


@pytest.mark.parametrize("username", ["ab", "a" * 33, "al ice", "alice!", "émile", "", None, 7])
def test_bad_usernames_are_refused(api_client: APIClient, username: Any) -> None:
    response = api_client.post(OPTIONS, {"username": username}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert "username" in response.json()["errors"]


def test_display_name_with_control_characters_is_refused(api_client: APIClient) -> None:
    response = api_client.post(
        OPTIONS, {"username": "alice", "display_name": "Al\u202eice"}, format="json"
    )

    assert response.status_code == 400
    assert "display_name" in response.json()["errors"]


# --- refusals of the credential ----------------------------------------------------------------

REFUSALS = [
    ({"challenge": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "challenge_mismatch"),
    ({"origin": "https://evil.example"}, "origin_not_allowed"),
    ({"rp_id": "evil.example"}, "rp_id_mismatch"),
    ({"user_present": False}, "user_presence_missing"),
    ({"user_verified": False}, "user_verification_missing"),
    ({"cross_origin": True}, "cross_origin_refused"),
    ({"top_origin": "https://evil.example"}, "cross_origin_refused"),
    ({"client_type": "webauthn.get"}, "wrong_client_data_type"),
    ({"ed25519_key": True}, "unsupported_algorithm"),
]


@pytest.mark.parametrize(("tamper", "code"), REFUSALS)
def test_registration_refusals(
    api_client: APIClient, authenticator: SoftAuthenticator, tamper: dict[str, Any], code: str
) -> None:
    body = start(api_client)
    credential = authenticator.create(body["publicKey"], **tamper)

    response = verify(api_client, body["ceremony_id"], credential)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert not User.objects.exists()
    assert not Passkey.objects.exists()


def test_credential_already_registered_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator
) -> None:
    first = start(api_client, "alice")
    credential = authenticator.create(first["publicKey"])
    assert verify(api_client, first["ceremony_id"], credential).status_code == 201

    second = start(api_client, "mallory")
    replayed = authenticator.create(second["publicKey"], reuse=unb64url(credential["id"]))
    response = verify(api_client, second["ceremony_id"], replayed)

    assert response.status_code == 409
    assert response.json()["code"] == "credential_already_registered"
    assert not User.objects.filter(username="mallory").exists()
