"""Ceremony endpoints are rate-limited per client address (PORTAL_AUTH_RATE)."""

from typing import Any

import pytest
from rest_framework.test import APIClient

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
