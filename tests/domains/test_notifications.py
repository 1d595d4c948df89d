"""Notifications: email to DOMAINS_ALERT_EMAILS and a JSON webhook, retried until it answers 2xx,
for new critical/high alerts, incident changes and the lockdown; automatic lockdown."""

import hashlib
import hmac
import json
from typing import Any

import pytest
from django.core import mail
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from domains.models import Lockdown, WatchedDomain
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def hook(world: World, httpserver: HTTPServer, settings: Any, celery_eager: None) -> list[Any]:
    """A webhook receiver that fails its first delivery (HTTP 503), then takes them."""
    received: list[Any] = []
    settings.DOMAINS_WEBHOOK_URL = httpserver.url_for("/hook")
    settings.DOMAINS_WEBHOOK_SECRET = "hook-secret"
    settings.DOMAINS_ALERT_EMAILS = ["ops@example.com", "oncall@example.com"]
    attempts = {"n": 0}

    def receive(request: Request) -> Response:
        attempts["n"] += 1
        if attempts["n"] == 1:
            return Response("busy", status=503)
        received.append(
            (json.loads(request.data), request.headers.get("X-Portal-Signature"), request.data)
        )
        return Response("", status=204)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(receive)
    return received


def test_a_critical_alert_is_mailed_and_posted_with_retries(
    world: World,
    baselined: WatchedDomain,
    watch: Any,
    hook: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    world.rdap["status"] = ["pending transfer"]
    with django_capture_on_commit_callbacks(execute=True):
        watch(["rdap"])

    events = [payload["event"] for payload, _, _ in hook]
    assert events == ["incident_changed", "alert_opened"]
    alert = hook[1][0]["alert"]
    assert (alert["domain"], alert["kind"], alert["severity"]) == (
        DOMAIN,
        "registration_status_changed",
        "critical",
    )
    _, signature, raw = hook[1]
    expected = hmac.new(b"hook-secret", raw, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    subjects = [m.subject for m in mail.outbox]
    assert "[domain watch] CRITICAL registration_status_changed on example.test" in subjects
    assert all(m.to == ["ops@example.com", "oncall@example.com"] for m in mail.outbox)


def test_automatic_lockdown_on_a_critical_alert(
    world: World, baselined: WatchedDomain, watch: Any, settings: Any
) -> None:
    settings.DOMAINS_AUTO_LOCKDOWN = True
    world.zone.records["A"] = (300, ["127.0.0.2"])
    watch(["dns"])  # high: no lockdown
    assert not Lockdown.objects.filter(enabled=True).exists()

    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])

    lockdown = Lockdown.objects.get()
    assert lockdown.enabled and lockdown.automatic
    assert lockdown.reason == f"automatic: caa_changed on {DOMAIN}"


def test_no_automatic_lockdown_by_default(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])
    assert not Lockdown.objects.filter(enabled=True).exists()


def test_watchdomains_once(world: World, db: None) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("watchdomains", "--once", stdout=out)
    assert "'checks': 8" in out.getvalue()
    assert WatchedDomain.objects.get().checks.count() == 8


def test_the_default_watch_is_the_rp_id_unless_localhost() -> None:
    import os
    import subprocess
    import sys

    def watched(rp_id: str) -> str:
        env = {**os.environ, "PORTAL_RP_ID": rp_id}
        env.pop("DOMAINS_WATCH", None)
        code = (
            "import django; django.setup(); "
            "from django.conf import settings; print(settings.DOMAINS_WATCH)"
        )
        env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
        return subprocess.run(  # noqa: S603 - our own interpreter
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()

    assert watched("portal.example.com") == "['portal.example.com']"
    assert watched("localhost") == "[]"
