"""The connector's provider as the portal serves it (WhiteNoise, as in production): a JavaScript
module any dapp's page can import across origins."""

import pytest
from django.test import Client, override_settings


@pytest.mark.parametrize("path", ["/static/connector/provider.js", "/static/connector/wagmi.js"])
def test_the_connector_is_served_as_a_module_every_origin_may_load(path: str) -> None:
    with override_settings(WHITENOISE_USE_FINDERS=True, WHITENOISE_AUTOREFRESH=True):
        response = Client().get(path, HTTP_ORIGIN="https://dapp.example")
        body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Cross-Origin-Resource-Policy" not in response
    assert b"export" in body
