"""The staff API: /api/v1/admin/domains, .../{name}, .../{name}/baseline, alerts, lockdown."""

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, TokenReauthentication, User
from domains.models import Alert, Baseline, Lockdown
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(sign_up: Any) -> dict[str, str]:
    token = sign_up("opal")["token"]
    User.objects.filter(username="opal").update(is_staff=True)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def person(sign_up: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sign_up('pat')['token']}"}


def stale_sudo() -> None:
    six_minutes_ago = timezone.now() - timedelta(minutes=6)
    AuthToken.objects.update(created=six_minutes_ago)  # the sign-in was its first confirmation
    TokenReauthentication.objects.update(verified_at=six_minutes_ago)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/admin/domains"),
        ("get", f"/api/v1/admin/domains/{DOMAIN}"),
        ("post", f"/api/v1/admin/domains/{DOMAIN}/baseline"),
        ("get", "/api/v1/admin/alerts?status=open"),
        ("get", "/api/v1/admin/lockdown"),
        ("post", "/api/v1/admin/lockdown"),
    ],
)
def test_staff_only(api_client: APIClient, person: dict[str, str], method: str, path: str) -> None:
    anonymous = getattr(api_client, method)(path, {}, format="json")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    refused = getattr(api_client, method)(path, {}, format="json", headers=person)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


def test_domains_and_their_signals(
    api_client: APIClient, staff: dict[str, str], world: World, watch: Any
) -> None:
    watch()

    listed = api_client.get("/api/v1/admin/domains", headers=staff)
    assert listed.status_code == 200
    assert listed.json() == [
        {
            "name": DOMAIN,
            "source": "settings",
            "states": {
                "rdap": "unknown",
                "dns": "unknown",
                "tls": "unknown",
                "ct": "unknown",
                "content": "unknown",
                "wellknown": "unknown",
                "hsts": "ok",
                "onchain": "ok",
            },
            "open_alerts": 0,
        }
    ]
    detail = api_client.get(f"/api/v1/admin/domains/{DOMAIN}", headers=staff).json()
    dns = next(s for s in detail["signals"] if s["signal"] == "dns")
    assert dns["latest"]["value"]["records"]["A"] == ["127.0.0.1"]
    assert dns["baseline"] is None
    assert dns["proposed_baseline"]["value"]["records"]["A"] == ["127.0.0.1"]


def test_an_unwatched_domain_is_404(api_client: APIClient, staff: dict[str, str]) -> None:
    response = api_client.get("/api/v1/admin/domains/nope.test", headers=staff)
    assert response.status_code == 404
    assert response.json()["code"] == "domain_not_found"


def test_approve_the_baseline(
    api_client: APIClient, staff: dict[str, str], world: World, watch: Any
) -> None:
    watch()
    response = api_client.post(
        f"/api/v1/admin/domains/{DOMAIN}/baseline", {}, format="json", headers=staff
    )
    assert response.status_code == 200
    assert sorted(response.json()["approved"]) == sorted(
        ["rdap", "dns", "tls", "ct", "content", "wellknown", "hsts", "onchain"]
    )
    assert Baseline.objects.filter(status="approved").count() == 8
    assert AuditEvent.objects.get(kind="domain_baseline_approved").user == User.objects.get(
        username="opal"
    )
    detail = api_client.get(f"/api/v1/admin/domains/{DOMAIN}", headers=staff).json()
    assert {s["state"] for s in detail["signals"]} == {"ok"}
    assert all(s["baseline"]["approved_by"] == "opal" for s in detail["signals"])


def test_approving_needs_sudo_mode(
    api_client: APIClient, staff: dict[str, str], world: World, watch: Any
) -> None:
    watch()
    stale_sudo()
    response = api_client.post(
        f"/api/v1/admin/domains/{DOMAIN}/baseline", {}, format="json", headers=staff
    )
    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert not Baseline.objects.filter(status="approved").exists()


def test_approving_before_any_observation_is_a_conflict(
    api_client: APIClient, staff: dict[str, str], world: World, operator: Any
) -> None:
    from domains.services import sync_watched_domains

    sync_watched_domains()
    response = api_client.post(
        f"/api/v1/admin/domains/{DOMAIN}/baseline", {}, format="json", headers=staff
    )
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_approve"


def test_open_alerts(
    api_client: APIClient, staff: dict[str, str], world: World, baselined: Any, watch: Any
) -> None:
    world.zone.records["A"] = (300, ["127.0.0.2"])
    watch(["dns"])
    world.zone.records["A"] = (300, ["127.0.0.1"])
    watch(["dns"])
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])

    response = api_client.get("/api/v1/admin/alerts?status=open", headers=staff)

    assert response.status_code == 200
    [alert] = response.json()
    caa = Alert.objects.get(kind="caa_changed")
    assert alert == {
        "id": caa.pk,
        "domain": DOMAIN,
        "signal": "dns",
        "kind": "caa_changed",
        "severity": "critical",
        "summary": caa.summary,
        "fingerprint": caa.fingerprint,
        "first_seen": alert["first_seen"],
        "last_seen": alert["last_seen"],
        "status": "open",
    }
    everything = api_client.get("/api/v1/admin/alerts", headers=staff).json()
    assert len(everything) == 2
    bad = api_client.get("/api/v1/admin/alerts?status=maybe", headers=staff)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_status"


def test_lockdown_switch(api_client: APIClient, staff: dict[str, str]) -> None:
    assert api_client.get("/api/v1/admin/lockdown", headers=staff).json() == {
        "enabled": False,
        "reason": "",
    }
    on = api_client.post(
        "/api/v1/admin/lockdown",
        {"enabled": True, "reason": "registrar says a transfer is pending"},
        format="json",
        headers=staff,
    )
    assert on.status_code == 200
    assert on.json() == {"enabled": True, "reason": "registrar says a transfer is pending"}
    assert Lockdown.objects.get().changed_by == User.objects.get(username="opal")
    off = api_client.post(
        "/api/v1/admin/lockdown", {"enabled": False, "reason": ""}, format="json", headers=staff
    )
    assert off.json()["enabled"] is False
    assert AuditEvent.objects.filter(kind="lockdown_changed").count() == 2


def test_lockdown_needs_sudo_mode_and_a_valid_body(
    api_client: APIClient, staff: dict[str, str]
) -> None:
    bad = api_client.post(
        "/api/v1/admin/lockdown", {"enabled": "perhaps"}, format="json", headers=staff
    )
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_request"
    no_reason = api_client.post(
        "/api/v1/admin/lockdown", {"enabled": True, "reason": ""}, format="json", headers=staff
    )
    assert no_reason.status_code == 400 and no_reason.json()["code"] == "reason_required"
    stale_sudo()
    response = api_client.post(
        "/api/v1/admin/lockdown", {"enabled": True, "reason": "x"}, format="json", headers=staff
    )
    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert not Lockdown.objects.filter(enabled=True).exists()
    # Reading needs no confirmation.
    assert api_client.get("/api/v1/admin/lockdown", headers=staff).status_code == 200


def test_the_schema_documents_the_staff_api(api_client: APIClient) -> None:
    paths = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()[
        "paths"
    ]
    for path in (
        "/api/v1/admin/domains",
        "/api/v1/admin/domains/{name}",
        "/api/v1/admin/domains/{name}/baseline",
        "/api/v1/admin/alerts",
        "/api/v1/admin/lockdown",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/admin/lockdown"]) == {"get", "post"}
