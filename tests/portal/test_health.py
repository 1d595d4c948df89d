"""`GET /healthz`: database (and broker) status; 503 when the database is unreachable."""

from typing import Any

import pytest
from django.db import connection
from django.test import Client


@pytest.mark.django_db
def test_healthy(client: Client, settings: Any) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["database"] == "ok"
    assert response.json()["broker"] == "ok"


@pytest.mark.django_db
def test_without_a_broker_configured_only_the_database_is_reported(
    client: Client, settings: Any
) -> None:
    settings.REDIS_URL = ""

    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db
def test_unreachable_broker_degrades_but_still_serves(client: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "degraded", "database": "ok", "broker": "unavailable"}


@pytest.mark.django_db
def test_unreachable_database_is_503(client: Client) -> None:
    real = connection.settings_dict.copy()
    connection.close()
    connection.settings_dict["PORT"] = "1"
    try:
        response = client.get("/healthz")
    finally:
        connection.close()
        connection.settings_dict.update(real)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["database"] == "unavailable"
