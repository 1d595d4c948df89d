"""/console/domains/<name>, its check pages (history with diffs) and pre-approved changes."""

from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from domains.models import ExpectedChange, WatchedDomain
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


def test_registration_certificates_and_signals(
    staff_client: Client, world: World, baselined: WatchedDomain, watch: Any
) -> None:
    rogue = world.rogue_ca.issue_cert(DOMAIN)
    world.ct.append(world.issuance("1001", rogue, issuer="Rogue Test CA"))
    watch(["ct"])

    page = staff_client.get(f"/console/domains/{DOMAIN}").content.decode()

    assert "Good Registrar (IANA 292)" in page
    assert 'id="expiry-countdown">399 days<' in page or 'id="expiry-countdown">400 days<' in page
    assert "client transfer prohibited" in page
    ct_table = page.split('id="ct-certificates"')[1].split("</table>")[0]
    assert ct_table.count("<tr") == 3  # header, the approved one, the rogue one
    assert "Rogue Test CA" in ct_table and "NO" in ct_table
    live = page.split('id="live-certificates"')[1].split("</table>")[0]
    assert "127.0.0.1" in live and "Portal Test Trusted CA" in live


def test_an_unwatched_domain_is_404(staff_client: Client) -> None:
    assert staff_client.get("/console/domains/nope.test").status_code == 404
    assert staff_client.get("/console/domains/nope.test/dns").status_code == 404


def test_history_shows_what_changed(
    staff_client: Client, world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.zone.records["A"] = (300, ["127.0.0.2"])
    watch(["dns"])

    page = staff_client.get(f"/console/domains/{DOMAIN}/dns").content.decode()

    assert 'id="check-state">critical<' in page
    history = page.split('id="history"')[1]
    assert "<code>records.A</code>" in history
    assert "<del>[&#x27;127.0.0.1&#x27;]</del>" in history
    assert "<ins>[&#x27;127.0.0.2&#x27;]</ins>" in history


def test_pre_approve_a_change(
    api_client: APIClient, sign_up: Any, world: World, watch: Any
) -> None:
    from accounts.models import User

    token = sign_up("opal")["token"]
    User.objects.filter(username="opal").update(is_staff=True)
    watch(["dns"])
    headers = {"Authorization": f"Bearer {token}"}

    response = api_client.post(
        f"/console/domains/{DOMAIN}/expected",
        {"signal": "dns", "kind": "address_changed", "value": ["127.0.0.2"], "note": "new LB"},
        format="json",
        headers=headers,
    )

    assert response.status_code == 201
    expected = ExpectedChange.objects.get()
    assert (expected.signal, expected.kind, expected.value) == (
        "dns",
        "address_changed",
        ["127.0.0.2"],
    )
    bad = api_client.post(
        f"/console/domains/{DOMAIN}/expected",
        {"signal": "dns", "kind": "made_up", "value": 1},
        format="json",
        headers=headers,
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"


def test_pre_approving_needs_sudo_mode(
    api_client: APIClient, sign_up: Any, world: World, watch: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import AuthToken

    from accounts.models import TokenReauthentication, User

    token = sign_up("opal")["token"]
    User.objects.filter(username="opal").update(is_staff=True)
    six_minutes_ago = timezone.now() - timedelta(minutes=6)
    AuthToken.objects.update(created=six_minutes_ago)  # the sign-in was its first confirmation
    TokenReauthentication.objects.update(verified_at=six_minutes_ago)
    watch(["dns"])
    response = api_client.post(
        f"/console/domains/{DOMAIN}/expected",
        {"signal": "dns", "kind": "address_changed", "value": ["127.0.0.2"]},
        format="json",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert ExpectedChange.objects.count() == 0
