"""Every malformed body gets a 4xx with a stable code, never a 500, and writes nothing."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent, User
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.models import Ceremony, Passkey

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/auth/register/options",
    "/api/v1/auth/register/verify",
    "/api/v1/auth/login/options",
    "/api/v1/auth/login/verify",
]


def counts() -> tuple[int, int, int, int, int]:
    return (
        User.objects.count(),
        Passkey.objects.count(),
        Ceremony.objects.count(),
        Ceremony.objects.filter(consumed_at__isnull=False).count(),
        AuditEvent.objects.count(),
    )


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    ("raw", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "malformed_request"),
        ("[1, 2]", "application/json", 400, "invalid_request"),
        ('"text"', "application/json", 400, "invalid_request"),
        ("username=alice", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ],
)
def test_unreadable_bodies(
    api_client: APIClient, url: str, raw: str, content_type: str, status: int, code: str
) -> None:
    before = counts()

    response = api_client.generic("POST", url, raw, content_type=content_type)

    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["detail"]
    assert counts() == before


def test_oversized_body_is_refused(api_client: APIClient) -> None:
    huge = '{"username": "' + "a" * 400_000 + '"}'

    response = api_client.generic(
        "POST", "/api/v1/auth/register/options", huge, content_type="application/json"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Ceremony.objects.exists()


@pytest.fixture
def registration(api_client: APIClient) -> dict[str, Any]:
    return dict(
        api_client.post(
            "/api/v1/auth/register/options", {"username": "alice"}, format="json"
        ).json()
    )


def _mangle(credential: dict[str, Any], case: str) -> Any:
    response = dict(credential["response"])
    if case == "missing_credential":
        return None
    if case == "credential_is_a_list":
        return [credential]
    if case == "credential_is_a_string":
        return "credential"
    if case == "missing_response":
        return {k: v for k, v in credential.items() if k != "response"}
    if case == "missing_client_data":
        response.pop("clientDataJSON")
    if case == "bad_base64url_client_data":
        response["clientDataJSON"] = "!!!not base64!!!"
    if case == "bad_base64url_raw_id":
        return {**credential, "rawId": "***"}
    if case == "id_differs_from_raw_id":
        return {**credential, "id": "AAAA"}
    if case == "attestation_not_cbor":
        response["attestationObject"] = "AAAA"
    if case == "client_data_not_json":
        response["clientDataJSON"] = "bm90IGpzb24"
    if case == "wrong_type":
        return {**credential, "type": "password"}
    if case == "number_fields":
        response["clientDataJSON"] = 12
    if case == "oversized":
        response["clientDataJSON"] = "A" * 20_000
    return {**credential, "response": response}


CASES = [
    "missing_credential",
    "credential_is_a_list",
    "credential_is_a_string",
    "missing_response",
    "missing_client_data",
    "bad_base64url_client_data",
    "bad_base64url_raw_id",
    "id_differs_from_raw_id",
    "attestation_not_cbor",
    "client_data_not_json",
    "wrong_type",
    "number_fields",
    "oversized",
]


@pytest.mark.parametrize("case", CASES)
def test_malformed_registration_credentials(
    api_client: APIClient, authenticator: SoftAuthenticator, registration: dict[str, Any], case: str
) -> None:
    credential = authenticator.create(registration["publicKey"])
    body: dict[str, Any] = {"ceremony_id": registration["ceremony_id"]}
    mangled = _mangle(credential, case)
    if mangled is not None:
        body["credential"] = mangled
    before = counts()

    response = api_client.post("/api/v1/auth/register/verify", body, format="json")

    assert 400 <= response.status_code < 500, response.content
    assert response.json()["code"] in ("invalid_request", "invalid_credential")
    assert counts()[:2] == before[:2]
    if response.json()["code"] == "invalid_request":
        assert counts() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ceremony_id": "not-a-uuid", "credential": {}}, "ceremony_id"),
        ({"ceremony_id": 5, "credential": {}}, "ceremony_id"),
        ({"credential": {}}, "ceremony_id"),
        (
            {
                "ceremony_id": "00000000-0000-0000-0000-000000000000",
                "credential": {},
                "passkey_name": "x" * 65,
            },
            "passkey_name",
        ),
        (
            {
                "ceremony_id": "00000000-0000-0000-0000-000000000000",
                "credential": {},
                "passkey_name": ["a"],
            },
            "passkey_name",
        ),
    ],
)
def test_wrong_field_types(api_client: APIClient, body: dict[str, Any], field: str) -> None:
    response = api_client.post("/api/v1/auth/register/verify", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_request"
    assert field in response.json()["errors"]


@pytest.mark.parametrize("case", CASES)
def test_malformed_authentication_credentials(
    api_client: APIClient, authenticator: SoftAuthenticator, sign_up: Any, case: str
) -> None:
    sign_up("alice")
    options = api_client.post("/api/v1/auth/login/options", {}, format="json").json()
    credential = authenticator.get(options["publicKey"])
    if case == "attestation_not_cbor":
        credential["response"]["authenticatorData"] = "AAAA"
    mangled = _mangle(credential, case)
    body: dict[str, Any] = {"ceremony_id": options["ceremony_id"]}
    if mangled is not None:
        body["credential"] = mangled
    before = counts()

    response = api_client.post("/api/v1/auth/login/verify", body, format="json")

    assert 400 <= response.status_code < 500, response.content
    assert counts()[:2] == before[:2]
    assert response.json()["code"] in ("invalid_request", "invalid_credential")
    assert Passkey.objects.get().sign_count == 0
