"""The OpenAPI schema and its interactive docs describe the API."""

import pytest
from django.test import Client


@pytest.mark.django_db
def test_schema_lists_the_auth_endpoints(client: Client) -> None:
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/auth/register/options",
        "/api/v1/auth/register/verify",
        "/api/v1/auth/login/options",
        "/api/v1/auth/login/verify",
        "/api/v1/auth/logout",
        "/api/v1/me",
    ):
        assert path in paths, path


@pytest.mark.django_db
def test_docs_page_serves_without_inline_scripts(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    assert b"swagger" in response.content.lower()
    assert "script-src 'self'" in response["Content-Security-Policy"]
