"""`/.well-known/webauthn`: related origins that may use this RP ID's passkeys."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from chain.devtools.authenticator import SoftAuthenticator


def test_absent_without_related_origins(client: Client, settings: Any) -> None:
    settings.PORTAL_RELATED_ORIGINS = []

    assert client.get("/.well-known/webauthn").status_code == 404


def test_lists_the_related_origins(client: Client, settings: Any) -> None:
    settings.PORTAL_RELATED_ORIGINS = ["https://wallet.example", "https://app.example"]

    response = client.get("/.well-known/webauthn")

    assert response.status_code == 200
    assert response.json() == {"origins": ["https://wallet.example", "https://app.example"]}


@pytest.mark.django_db
def test_a_related_origin_may_sign_in(
    api_client: APIClient,
    settings: Any,
    sign_up: Any,
    login_options: Any,
    authenticator: SoftAuthenticator,
) -> None:
    sign_up("alice")
    options = login_options()
    credential = authenticator.get(options["publicKey"], origin="https://wallet.example")
    body = {"ceremony_id": options["ceremony_id"], "credential": credential}

    settings.PORTAL_RELATED_ORIGINS = []
    refused = api_client.post("/api/v1/auth/login/verify", body, format="json")
    assert refused.json()["code"] == "origin_not_allowed"

    settings.PORTAL_RELATED_ORIGINS = ["https://wallet.example"]
    options = login_options()
    credential = authenticator.get(options["publicKey"], origin="https://wallet.example")
    accepted = api_client.post(
        "/api/v1/auth/login/verify",
        {"ceremony_id": options["ceremony_id"], "credential": credential},
        format="json",
    )
    assert accepted.status_code == 200
