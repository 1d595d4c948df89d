"""/console/migration: the related-origins file to serve and the accounts by key origin."""

from typing import Any

import pytest
from django.test import Client

from tests.domains.test_alerts_onchain import key_event

pytestmark = pytest.mark.django_db

NEW = "https://new.example.test"


def test_the_plan_counts_accounts_by_the_origins_of_their_keys(
    staff_client: Client, settings: Any
) -> None:
    old = settings.PORTAL_ORIGINS[0]
    a, b, c = ("0x" + f"{n:040x}" for n in (1, 2, 3))
    key_event(settings, name="PasskeyCreated", account=a, origin=old, credential="0x01")
    key_event(settings, name="PasskeyCreated", account=b, origin=old, credential="0x02")
    key_event(settings, name="PasskeyCreated", account=b, origin=NEW, credential="0x03")
    key_event(settings, name="PasskeyCreated", account=c, origin=NEW, credential="0x04")
    key_event(settings, name="PasskeyCreated", account=c, origin=old, credential="0x05")
    key_event(settings, name="PasskeyRemoved", account=c, origin=old, credential="0x05", block=11)

    response = staff_client.get(f"/console/migration?to={NEW}")

    assert response.status_code == 200
    page = response.content.decode()
    assert '"counts": [1, 1, 1]' in page
    assert f"&quot;origins&quot;: [\n    &quot;{NEW}&quot;\n  ]" in page
    assert 'src="/static/vendor/chart.umd.min.js"' in page


def test_only_https_origins_are_planned(staff_client: Client) -> None:
    page = staff_client.get("/console/migration?to=javascript:alert(1)").content.decode()
    assert "javascript:" not in page.split('id="related-origins-file"')[1].split("</pre>")[0]
