"""Alerts follow the flip model: one per change (fingerprint), re-notified on an interval while
open, closed by a revert or by approving a new baseline; an expected change raises none."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from accounts.models import AuditEvent
from domains.models import Alert, Baseline, Check, ExpectedChange, WatchedDomain
from domains.services import approve_baseline, expect_change
from tests.domains.conftest import open_alerts
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def mailed(settings: Any, celery_eager: None) -> None:
    settings.DOMAINS_ALERT_EMAILS = ["ops@example.com"]


def _set_a(world: World, *addresses: str) -> None:
    world.zone.records["A"] = (300, list(addresses))


def test_a_second_different_change_is_a_second_alert(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    _set_a(world, "127.0.0.2")
    watch(["dns"])
    _set_a(world, "127.0.0.1", "127.0.0.2")
    watch(["dns"])

    alerts = list(Alert.objects.order_by("id"))
    assert [a.kind for a in alerts] == ["address_changed", "address_changed"]
    assert [a.status for a in alerts] == ["closed", "open"]
    assert alerts[0].fingerprint != alerts[1].fingerprint


def test_a_change_that_comes_back_after_a_revert_alerts_again(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    _set_a(world, "127.0.0.2")
    watch(["dns"])
    _set_a(world, "127.0.0.1")
    watch(["dns"])
    _set_a(world, "127.0.0.2")
    watch(["dns"])

    alerts = list(Alert.objects.order_by("id"))
    assert [a.status for a in alerts] == ["closed", "open"]
    assert alerts[0].fingerprint == alerts[1].fingerprint


def test_an_open_alert_is_notified_once_then_again_after_the_interval(
    world: World,
    baselined: WatchedDomain,
    watch: Any,
    settings: Any,
    mailed: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.DOMAINS_RENOTIFY_SECONDS = 3600
    settings.DOMAINS_CHECK_SECONDS = 3600
    _set_a(world, "127.0.0.2")
    with django_capture_on_commit_callbacks(execute=True):
        watch(["dns"])
        watch(["dns"])
    about_alert = [m for m in mail.outbox if "address_changed" in m.subject]
    assert len(about_alert) == 1
    assert about_alert[0].to == ["ops@example.com"]
    assert "A/AAAA changed" in about_alert[0].body

    later = timezone.now() + timedelta(seconds=3601)
    with time_machine.travel(later), django_capture_on_commit_callbacks(execute=True):
        watch(["dns"])
    about_alert = [m for m in mail.outbox if "address_changed" in m.subject]
    assert len(about_alert) == 2
    assert "(still open)" in about_alert[1].subject
    assert Alert.objects.get().notifications == 2


def test_warnings_are_not_mailed(
    world: World,
    baselined: WatchedDomain,
    watch: Any,
    mailed: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    world.zone.records["NS"] = (60, world.zone.records["NS"][1])
    with django_capture_on_commit_callbacks(execute=True):
        watch(["dns"])
    assert Alert.objects.get().kind == "ttl_dropped"
    assert mail.outbox == []


def test_approving_the_new_value_closes_the_alert(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    _set_a(world, "127.0.0.2")
    watch(["dns"])

    approved = approve_baseline(domain=baselined, actor=operator, client=None)

    assert "dns" in approved
    alert = Alert.objects.get()
    assert alert.status == "closed" and alert.closed_reason == "baseline_approved"
    assert Check.objects.get(signal="dns").state == "ok"
    assert Baseline.objects.filter(check_ref__signal="dns", status="superseded").count() == 1
    event = AuditEvent.objects.filter(kind="domain_baseline_approved").latest("id")
    assert event.user == operator and event.details["domain"] == DOMAIN
    watch(["dns"])
    assert open_alerts() == []


def test_approval_keeps_alerts_that_no_baseline_explains(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    for site in world.sites.values():
        site.pages["/"] = (200, {}, b"no hsts")
    watch(["hsts"])
    approve_baseline(domain=baselined, actor=operator, client=None)
    assert Alert.objects.get(kind="hsts_missing").status == "open"


def test_a_pre_approved_change_raises_no_alert_and_becomes_the_baseline(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    expect_change(
        domain=baselined,
        signal="dns",
        kind="address_changed",
        value=["127.0.0.2"],
        actor=operator,
        client=None,
        note="moving to the new load balancer",
    )
    _set_a(world, "127.0.0.2")

    watch(["dns"])

    assert Alert.objects.count() == 0
    assert Check.objects.get(signal="dns").state == "ok"
    assert ExpectedChange.objects.get().used_at is not None
    baseline = Baseline.objects.get(check_ref__signal="dns", status="approved")
    assert baseline.value["records"]["A"] == ["127.0.0.2"]
    assert AuditEvent.objects.filter(kind="domain_change_expected").count() == 1
    # Going back is now the change.
    _set_a(world, "127.0.0.1")
    watch(["dns"])
    assert Alert.objects.get().kind == "address_changed"


def test_a_different_change_than_the_expected_one_alerts(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    expect_change(
        domain=baselined,
        signal="dns",
        kind="address_changed",
        value=["127.0.0.2"],
        actor=operator,
        client=None,
    )
    _set_a(world, "127.0.0.3")
    watch(["dns"])
    assert Alert.objects.get().kind == "address_changed"
    assert ExpectedChange.objects.get().used_at is None


def test_approval_does_not_reopen_what_it_cannot_explain(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    world.serve_everywhere(world.rogue_ca.issue_cert(DOMAIN))
    watch(["tls"])
    unknown = Alert.objects.get(kind="certificate_unknown")

    approve_baseline(domain=baselined, actor=operator, client=None)

    # The new key is approved; a certificate that does not verify is still a finding: same alert.
    assert Alert.objects.get(kind="tls_key_changed").closed_reason == "baseline_approved"
    assert list(Alert.objects.filter(kind="certificate_unknown")) == [unknown]
    unknown.refresh_from_db()
    assert unknown.status == "open"
