"""The /connect popup's page (framing refused, the opener kept, bad origins refused), the sessions
page and the admin."""

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_connect_refuses_framing_and_keeps_its_opener(client: Client) -> None:
    response = client.get("/connect?origin=http://localhost:8001")
    assert response.status_code == 200
    assert response["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert response["Cross-Origin-Opener-Policy"] == "unsafe-none"
    page = response.content.decode()
    assert 'data-dapp-origin="http://localhost:8001"' in page
    assert 'data-signed-in="false"' in page


@pytest.mark.parametrize(
    "origin",
    [
        "",
        "javascript:alert(1)",
        "http://localhost:8001/path",
        "http://localhost:8000",  # the portal itself
        'http://x"><script>',
    ],
)
def test_connect_refuses_what_is_not_a_dapp_origin(client: Client, origin: str) -> None:
    response = client.get("/connect", {"origin": origin})
    assert response.status_code == 400
    assert b"connect-error" in response.content
    assert response["X-Frame-Options"] == "DENY"


def test_the_sessions_page_needs_a_sign_in(client: Client, sign_up: Any) -> None:
    response = client.get("/account/sessions")
    assert response.status_code == 302
    from accounts.models import User

    client.force_login(User.objects.get(username=sign_up("carol")["user"]["username"]))
    page = client.get("/account/sessions")
    assert page.status_code == 200
    assert b'id="sessions-page"' in page.content
    assert b'id="sessions-link"' in client.get("/account").content


def test_the_admin_lists_sessions_by_status_and_origin(admin_client: Client) -> None:
    for url in (
        "/admin/sessionkeys/session/",
        "/admin/sessionkeys/session/?status__exact=active",
        "/admin/sessionkeys/session/?q=localhost",
        "/admin/sessionkeys/sessionpreset/add/",
        "/admin/sessionkeys/relayedoperation/",
    ):
        assert admin_client.get(url).status_code == 200, url
