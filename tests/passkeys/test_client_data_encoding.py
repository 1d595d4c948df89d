"""clientDataJSON is read strictly as UTF-8 (WebAuthn §5.8.1.2), and shallow, wherever it is read:
anything else is refused with its own code, before the library or the chain encoding sees it."""

from typing import Any

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db


def login(api_client: APIClient, login_options: Any, authenticator: SoftAuthenticator) -> Any:
    options = login_options()
    return api_client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
        },
        format="json",
    )


@pytest.mark.parametrize(
    ("encoding", "code"),
    [
        ("utf-16", "client_data_not_utf8"),
        ("utf-32", "client_data_not_utf8"),
        # Without a BOM, ASCII in UTF-16 is valid UTF-8 (with NULs): read as UTF-8, not JSON.
        ("utf-16-le", "invalid_credential"),
    ],
)
def test_sign_in_with_client_data_that_is_not_utf8_is_refused(
    api_client: APIClient,
    sign_up: Any,
    login_options: Any,
    authenticator: SoftAuthenticator,
    encoding: str,
    code: str,
) -> None:
    sign_up("alice")
    authenticator.client_data_encoding = encoding
    tokens = AuthToken.objects.count()

    response = login(api_client, login_options, authenticator)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == code
    assert AuthToken.objects.count() == tokens
    refused = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    assert refused.details["reason"] == code


def test_sign_in_with_invalid_utf8_bytes_is_refused(
    api_client: APIClient, sign_up: Any, login_options: Any, authenticator: SoftAuthenticator
) -> None:
    sign_up("alice")
    # A Latin-1 byte: never valid UTF-8 on its own.
    authenticator.tamper_client_data = lambda data: data.replace(b'"type"', b'"\xe9":1,"type"')

    response = login(api_client, login_options, authenticator)

    assert response.status_code == 400
    assert response.json()["code"] == "client_data_not_utf8"


def test_sign_up_with_client_data_that_is_not_utf8_is_refused(
    api_client: APIClient, authenticator: SoftAuthenticator
) -> None:
    options = api_client.post(
        "/api/v1/auth/register/options", {"username": "alice"}, format="json"
    ).json()
    authenticator.client_data_encoding = "utf-16"

    response = api_client.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.create(options["publicKey"]),
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "client_data_not_utf8"
    assert not User.objects.exists() and not Passkey.objects.exists()


def test_deeply_nested_client_data_is_refused(
    api_client: APIClient, sign_up: Any, login_options: Any, authenticator: SoftAuthenticator
) -> None:
    sign_up("alice")
    nested: Any = []
    for _ in range(100):
        nested = [nested]
    authenticator.client_data_extra = {"extra": nested}

    response = login(api_client, login_options, authenticator)

    assert response.status_code == 400
    assert response.json()["code"] == "json_too_deep"


def test_utf8_client_data_with_other_members_still_signs_in(
    api_client: APIClient, sign_up: Any, login_options: Any, authenticator: SoftAuthenticator
) -> None:
    sign_up("alice")
    authenticator.client_data_extra = {"other_keys_can_be_added_here": "é ✓"}

    response = login(api_client, login_options, authenticator)

    assert response.status_code == 200, response.content
