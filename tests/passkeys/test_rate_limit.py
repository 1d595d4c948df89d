"""Ceremony endpoints are rate-limited per client address (PORTAL_AUTH_RATE)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

from chain.devtools.authenticator import SoftAuthenticator
from tests.conftest import SignUp

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/auth/register/options",
        "/api/v1/auth/register/verify",
        "/api/v1/auth/login/options",
        "/api/v1/auth/login/verify",
        "/signup/verify",
        "/login/verify",
    ],
)
def test_over_the_rate_a_client_gets_429_with_retry_after(settings: Any, url: str) -> None:
    settings.PORTAL_AUTH_RATE = "3/min"
    client = APIClient(REMOTE_ADDR="198.51.100.1", enforce_csrf_checks=False)
    for _ in range(3):
        assert client.post(url, {}, format="json").status_code != 429

    response = client.post(url, {}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 0 < int(response["Retry-After"]) <= 60


def test_the_limit_is_per_client_address(settings: Any) -> None:
    settings.PORTAL_AUTH_RATE = "2/min"
    url = "/api/v1/auth/login/options"
    first = APIClient(REMOTE_ADDR="198.51.100.1")
    second = APIClient(REMOTE_ADDR="198.51.100.2")
    for _ in range(2):
        first.post(url, {}, format="json")

    assert first.post(url, {}, format="json").status_code == 429
    assert second.post(url, {}, format="json").status_code == 200


def test_forwarded_address_counts_only_behind_a_trusted_proxy(settings: Any) -> None:
    settings.PORTAL_AUTH_RATE = "1/min"
    url = "/api/v1/auth/login/options"
    client = APIClient(REMOTE_ADDR="10.0.0.1")

    assert client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR="1.1.1.1").status_code == 200
    spoofed = client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR="2.2.2.2")
    assert spoofed.status_code == 429

    settings.PORTAL_NUM_PROXIES = 1
    assert client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR="3.3.3.3").status_code == 200
    assert client.post(url, {}, format="json", HTTP_X_FORWARDED_FOR="3.3.3.3").status_code == 429


def _sign_in(client: APIClient, authenticator: SoftAuthenticator) -> Any:
    """Login options then verify; the verify response (or the refused options response)."""
    options = client.post("/api/v1/auth/login/options", {}, format="json")
    if options.status_code != 200:
        return options
    return client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": options.json()["ceremony_id"],
            "credential": authenticator.get(options.json()["publicKey"]),
        },
        format="json",
    )


def test_a_completed_ceremony_counts_once_by_its_options(
    settings: Any, sign_up: SignUp, authenticator: SoftAuthenticator
) -> None:
    sign_up("alice")
    settings.PORTAL_AUTH_RATE = "3/min"
    client = APIClient(REMOTE_ADDR="198.51.100.31")

    answers = [_sign_in(client, authenticator).status_code for _ in range(4)]

    assert answers == [200, 200, 200, 429]


def test_refused_verifies_count_and_then_even_a_good_one_waits(
    settings: Any, sign_up: SignUp, authenticator: SoftAuthenticator
) -> None:
    sign_up("alice")
    settings.PORTAL_AUTH_RATE = "3/min"
    client = APIClient(REMOTE_ADDR="198.51.100.32")
    first, second = (
        client.post("/api/v1/auth/login/options", {}, format="json").json() for _ in range(2)
    )
    # Signed over the other ceremony's challenge: refused, and counted (3 of 3).
    refused = client.post(
        "/api/v1/auth/login/verify",
        {"ceremony_id": first["ceremony_id"], "credential": authenticator.get(second["publicKey"])},
        format="json",
    )

    good = client.post(
        "/api/v1/auth/login/verify",
        {
            "ceremony_id": second["ceremony_id"],
            "credential": authenticator.get(second["publicKey"]),
        },
        format="json",
    )

    assert 400 <= refused.status_code < 500 and refused.status_code != 429
    assert good.status_code == 429
    assert good.json()["code"] == "rate_limited"
    assert 0 < int(good["Retry-After"]) <= 60
    assert client.post("/api/v1/auth/login/options", {}, format="json").status_code == 429
