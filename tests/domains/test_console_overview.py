"""/console/: staff only; posture tiles, open alerts, incidents, the lockdown switch, adding a
domain."""

from typing import Any

import pytest
from django.test import Client

from accounts.models import AuditEvent, User
from domains.models import WatchedDomain
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


def test_anonymous_people_are_sent_to_sign_in(client: Client) -> None:
    response = client.get("/console/")
    assert response.status_code == 302
    assert response["Location"] == "/login?next=/console/"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/console/"),
        ("post", "/console/domains"),
        ("get", f"/console/domains/{DOMAIN}"),
        ("get", f"/console/domains/{DOMAIN}/dns"),
        ("get", "/console/incidents/1"),
        ("post", "/console/incidents/1/action"),
        ("get", "/console/migration"),
    ],
)
def test_people_who_are_not_staff_are_refused(client: Client, method: str, path: str) -> None:
    client.force_login(User.objects.create_user("pat"))
    assert getattr(client, method)(path).status_code == 403


def test_posture_tiles_alerts_and_incidents(
    staff_client: Client, world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])

    page = staff_client.get("/console/").content.decode()

    assert 'data-signal="dns" data-state="critical"' in page
    assert 'data-signal="tls" data-state="ok"' in page
    assert 'data-kind="caa_changed"' in page
    assert "caa changed on example.test" in page
    assert 'Lockdown: <span id="lockdown-state">off</span>' in page
    assert "<script>" not in page and "onclick" not in page  # CSP: scripts from files only


def test_the_page_says_when_the_lockdown_is_on(staff_client: Client, operator: Any) -> None:
    from domains.services import set_lockdown

    set_lockdown(enabled=True, reason="transfer pending", actor=operator, client=None)
    page = staff_client.get("/console/").content.decode()
    assert 'id="lockdown-state">ON<' in page
    assert "transfer pending" in page and "by operator" in page


def test_add_a_domain(staff_client: Client) -> None:
    response = staff_client.post("/console/domains", {"name": "New.Example.COM."})
    assert response.status_code == 302
    domain = WatchedDomain.objects.get()
    assert (domain.name, domain.source) == ("new.example.com", "console")
    assert AuditEvent.objects.get(kind="domain_watch_changed").details == {
        "domain": "new.example.com",
        "watched": True,
    }
    again = staff_client.post("/console/domains", {"name": "new.example.com"}, follow=True)
    assert "already watched" in again.content.decode()


@pytest.mark.parametrize("name", ["", "localhost", "not a domain", "-x.example.com", "a" * 300])
def test_a_bad_domain_name_is_refused(staff_client: Client, name: str) -> None:
    page = staff_client.post("/console/domains", {"name": name}, follow=True).content.decode()
    assert "That is not a domain name." in page
    assert WatchedDomain.objects.count() == 0
