"""`/api/v1/auth/login/{options,verify}`: sign-in over the API, discoverable and username-first."""

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from chain.devtools.authenticator import SoftAuthenticator, b64url, unb64url
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

VERIFY = "/api/v1/auth/login/verify"
Options = Callable[..., dict[str, Any]]


def verify(api_client: APIClient, options: dict[str, Any], credential: dict[str, Any]) -> Any:
    return api_client.post(
        VERIFY, {"ceremony_id": options["ceremony_id"], "credential": credential}, format="json"
    )


def test_discoverable_options_have_no_allow_list(login_options: Options) -> None:
    options = login_options()["publicKey"]

    assert options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    assert options["rpId"] == "localhost"
    assert options["timeout"] == 300_000


def test_username_first_options_list_that_users_passkeys(
    sign_up: Any, login_options: Options
) -> None:
    passkey_id = sign_up("alice")["passkey"]["id"]
    credential_id = bytes(Passkey.objects.get(pk=passkey_id).credential_id)

    allowed = login_options("Alice")["publicKey"]["allowCredentials"]

    assert [c["id"] for c in allowed] == [b64url(credential_id)]
    assert allowed[0]["transports"] == ["hybrid", "internal"]


def test_unknown_username_gets_options_of_the_same_shape(
    sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    known = login_options("alice")["publicKey"]

    unknown = login_options("nobody")["publicKey"]
    again = login_options("nobody")["publicKey"]

    assert set(unknown) == set(known)
    assert len(unknown["allowCredentials"]) == len(known["allowCredentials"])
    assert set(unknown["allowCredentials"][0]) == set(known["allowCredentials"][0])
    assert len(unb64url(unknown["allowCredentials"][0]["id"])) > 0
    assert unknown["allowCredentials"] == again["allowCredentials"]
    # The challenge holds the ceremony, whom it expects sealed: the same length either way.
    assert len(unb64url(unknown["challenge"])) == len(unb64url(known["challenge"]))


def test_discoverable_sign_in(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    signed_up = sign_up("alice")
    options = login_options()

    response = verify(api_client, options, authenticator.get(options["publicKey"]))

    assert response.status_code == 200, response.content
    assert set(response.json()) == {"token", "user"}
    assert response.json()["user"] == signed_up["user"]
    me = api_client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['token']}")
    assert me.json()["username"] == "alice"
    passkey = Passkey.objects.get()
    assert passkey.sign_count == 1
    assert passkey.last_used_at is not None
    assert AuditEvent.objects.filter(kind="login_succeeded", user__username="alice").exists()


def test_username_first_sign_in_without_user_handle(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options("alice")

    credential = authenticator.get(options["publicKey"], user_handle=None)
    response = verify(api_client, options, credential)

    assert response.status_code == 200, response.content


def test_each_login_issues_its_own_token(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    tokens = set()
    for _ in range(2):
        options = login_options()
        tokens.add(
            verify(api_client, options, authenticator.get(options["publicKey"])).json()["token"]
        )

    assert len(tokens) == 2


def test_backed_up_state_is_refreshed_at_login(
    api_client: APIClient, sign_up: Any, login_options: Options, authenticator: SoftAuthenticator
) -> None:
    authenticator.backup_eligible = True
    sign_up("alice")
    assert Passkey.objects.get().backed_up is False

    authenticator.backed_up = True
    options = login_options()
    assert verify(api_client, options, authenticator.get(options["publicKey"])).status_code == 200

    assert Passkey.objects.get().backed_up is True


# --- refusals ----------------------------------------------------------------------------------

ASSERTION_REFUSALS = [
    ({"challenge": b64url(b"\x01" * 32)}, "challenge_mismatch"),
    ({"origin": "https://evil.example"}, "origin_not_allowed"),
    ({"origin": "http://localhost:8001"}, "origin_not_allowed"),
    ({"rp_id": "evil.example"}, "rp_id_mismatch"),
    ({"user_present": False}, "user_presence_missing"),
    ({"user_verified": False}, "user_verification_missing"),
    ({"cross_origin": True}, "cross_origin_refused"),
    ({"cross_origin": "true"}, "cross_origin_refused"),
    ({"top_origin": "https://evil.example"}, "cross_origin_refused"),
    ({"client_type": "webauthn.create"}, "wrong_client_data_type"),
    ({"client_type": "payment.get"}, "wrong_client_data_type"),
    ({"tamper_signature": True}, "invalid_signature"),
    ({"user_handle": b"\x00" * 32}, "user_handle_mismatch"),
    ({"user_handle": None}, "user_handle_mismatch"),
]


@pytest.mark.parametrize(("tamper", "code"), ASSERTION_REFUSALS)
def test_sign_in_refusals(
    api_client: APIClient,
    authenticator: SoftAuthenticator,
    sign_up: Any,
    login_options: Options,
    tamper: dict[str, Any],
    code: str,
) -> None:
    sign_up("alice")
    options = login_options()

    response = verify(api_client, options, authenticator.get(options["publicKey"], **tamper))

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert "token" not in response.json()
    assert Passkey.objects.get().last_used_at == Passkey.objects.get().created_at
    failure = AuditEvent.objects.get(kind="login_failed")
    assert failure.details["reason"] == code
    assert failure.ip_address == "203.0.113.7"


def test_signature_by_another_key_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    sign_up("alice")
    options = login_options()
    forged = authenticator.get(
        options["publicKey"], signing_key=ec.generate_private_key(ec.SECP256R1())
    )

    assert verify(api_client, options, forged).json()["code"] == "invalid_signature"


def test_unknown_credential_is_refused(
    api_client: APIClient, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    stranger = SoftAuthenticator()
    stranger.create({"user": {"id": b64url(b"\x02" * 32)}, "challenge": b64url(b"\x00" * 32)})
    options = login_options()

    response = verify(api_client, options, stranger.get(options["publicKey"]))

    assert response.status_code == 400
    assert response.json()["code"] == "unknown_credential"


def test_another_users_passkey_is_refused_for_a_named_user(
    api_client: APIClient, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    mallory = SoftAuthenticator()
    options = api_client.post(
        "/api/v1/auth/register/options", {"username": "mallory"}, format="json"
    ).json()
    api_client.post(
        "/api/v1/auth/register/verify",
        {"ceremony_id": options["ceremony_id"], "credential": mallory.create(options["publicKey"])},
        format="json",
    )
    alice_options = login_options("alice")

    credential = mallory.get({"challenge": alice_options["publicKey"]["challenge"]})
    response = verify(api_client, alice_options, credential)

    assert response.json()["code"] == "credential_not_allowed"


def test_unknown_username_cannot_be_signed_into_with_a_real_passkey(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options("nobody")

    credential = authenticator.get({"challenge": options["publicKey"]["challenge"]})

    assert verify(api_client, options, credential).json()["code"] == "credential_not_allowed"


def test_user_handle_of_another_user_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    sign_up("bob")
    alice = User.objects.get(username="alice")
    bob = User.objects.get(username="bob")
    bobs_credential = bytes(Passkey.objects.get(user=bob).credential_id)
    options = login_options()

    credential = authenticator.get(
        options["publicKey"], credential_id=bobs_credential, user_handle=bytes(alice.user_handle)
    )

    assert verify(api_client, options, credential).json()["code"] == "user_handle_mismatch"


def test_disabled_account_cannot_sign_in(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    User.objects.filter(username="alice").update(is_active=False)
    options = login_options()

    response = verify(api_client, options, authenticator.get(options["publicKey"]))

    assert response.status_code == 403
    assert response.json()["code"] == "account_disabled"


# --- the signature counter ---------------------------------------------------------------------


def test_counter_that_does_not_increase_is_refused_and_recorded(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options()
    assert (
        verify(
            api_client, options, authenticator.get(options["publicKey"], sign_count=5)
        ).status_code
        == 200
    )

    options = login_options()
    response = verify(api_client, options, authenticator.get(options["publicKey"], sign_count=5))

    assert response.status_code == 400
    assert response.json()["code"] == "sign_count_not_increased"
    anomaly = AuditEvent.objects.get(kind="counter_anomaly")
    assert anomaly.details["stored_sign_count"] == 5
    assert anomaly.details["received_sign_count"] == 5
    assert Passkey.objects.get().sign_count == 5


def test_counter_going_back_to_zero_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, login_options: Options
) -> None:
    sign_up("alice")
    options = login_options()
    assert (
        verify(
            api_client, options, authenticator.get(options["publicKey"], sign_count=3)
        ).status_code
        == 200
    )

    options = login_options()
    response = verify(api_client, options, authenticator.get(options["publicKey"], sign_count=0))

    assert response.json()["code"] == "sign_count_not_increased"


def test_synced_passkey_that_never_counts_is_allowed(
    api_client: APIClient, sign_up: Any, login_options: Options, authenticator: SoftAuthenticator
) -> None:
    authenticator.counts_signatures = False
    sign_up("alice")

    for _ in range(3):
        options = login_options()
        assert (
            verify(api_client, options, authenticator.get(options["publicKey"])).status_code == 200
        )

    assert Passkey.objects.get().sign_count == 0
    assert not AuditEvent.objects.filter(kind="counter_anomaly").exists()
