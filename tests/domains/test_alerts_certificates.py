"""tls and ct: the certificate each address presents (SPKI, issuer, SANs, expiry), and the
certificates Certificate Transparency logged for the domain."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import time_machine

from domains.models import Alert, Check, Observation, WatchedDomain
from domains.services import approve_baseline
from tests.domains.conftest import open_alerts, raised_once_then_closed
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


def test_a_new_key_from_the_trusted_ca_is_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    renewed = world.trusted_ca.issue_cert(DOMAIN)  # valid, but a key nobody approved

    alert = raised_once_then_closed(
        watch=watch,
        signal="tls",
        kind="tls_key_changed",
        change=lambda: world.serve_everywhere(renewed),
        revert=lambda: world.serve_everywhere(world.trusted_cert),
    )
    assert "The TLS key (SPKI) changed" in alert.summary


def test_a_certificate_from_an_untrusted_ca_is_unknown_and_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    rogue = world.rogue_ca.issue_cert(DOMAIN)

    world.serve_everywhere(rogue)
    watch(["tls"])
    watch(["tls"])

    kinds = sorted(a.kind for a in open_alerts())
    assert kinds == ["certificate_unknown", "tls_key_changed"]
    unknown = Alert.objects.get(kind="certificate_unknown")
    assert "Rogue Test CA" in unknown.summary and "does not verify" in unknown.summary
    observed = Observation.objects.filter(check_ref__signal="tls").first()
    assert observed is not None and observed.value["certificates"]["127.0.0.1"]["verified"] is False

    world.serve_everywhere(world.trusted_cert)
    watch(["tls"])
    assert open_alerts() == []
    assert set(Alert.objects.values_list("closed_reason", flat=True)) == {"reverted"}


def test_a_certificate_for_another_name_does_not_verify(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.serve_everywhere(world.trusted_ca.issue_cert("other.test"))
    watch(["tls"])
    unknown = Alert.objects.get(kind="certificate_unknown")
    assert "does not verify (Hostname mismatch" in unknown.summary


def test_content_is_only_fetched_from_a_verified_certificate(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.serve_everywhere(world.rogue_ca.issue_cert(DOMAIN))
    watch(["content"])
    check = Check.objects.get(signal="content")
    assert check.state == "unknown"
    assert "CERTIFICATE_VERIFY_FAILED" in check.summary


def test_a_certificate_expiring_soon_is_high(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    short = world.trusted_ca.issue_cert(DOMAIN, not_after=datetime.now(tz=UTC) + timedelta(days=10))
    world.serve_everywhere(short)
    watch(["tls"])
    expiry = Alert.objects.get(kind="expiry_near", signal="tls")
    assert expiry.severity == "high"
    assert expiry.value == {"what": "certificate", "under_days": 30}


# --- ct ---


def test_an_unknown_key_logged_in_ct_is_critical(
    world: World, baselined: WatchedDomain, watch: Any, operator: Any
) -> None:
    rogue = world.rogue_ca.issue_cert(DOMAIN)
    world.ct.append(world.issuance("1001", rogue, issuer="Rogue Test CA"))

    watch(["ct"])
    watch(["ct"])

    alert = Alert.objects.get(kind="certificate_unknown", signal="ct")
    assert alert.status == "open" and alert.severity == "critical"
    assert "Rogue Test CA" in alert.summary and "1001" in alert.summary
    assert world.ct_requests[-1]["after"] == "1001"  # only newer issuances are asked for
    assert [a.kind for a in open_alerts()] == ["certificate_unknown"]

    # It cannot be un-logged: the operator approves it (it was theirs) or it expires.
    approve_baseline(domain=baselined, actor=operator, client=None, signals=["ct"])
    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_reason == "baseline_approved"


def test_an_unknown_ct_certificate_closes_when_it_expires(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    rogue = world.rogue_ca.issue_cert(DOMAIN, not_after=datetime.now(tz=UTC) + timedelta(days=3))
    world.ct.append(world.issuance("1001", rogue, issuer="Rogue Test CA"))
    watch(["ct"])
    assert Alert.objects.get(kind="certificate_unknown").status == "open"

    with time_machine.travel(datetime.now(tz=UTC) + timedelta(days=4)):
        watch(["ct"])

    alert = Alert.objects.get(kind="certificate_unknown")
    assert alert.status == "closed" and alert.closed_reason == "reverted"


def test_a_renewal_with_the_approved_key_is_known(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.ct.append({**world.issuance("1002", world.trusted_cert), "tbs_sha256": "11" * 32})
    watch(["ct"])
    assert open_alerts() == []
    assert Check.objects.get(signal="ct").state == "ok"


def test_ct_is_off_without_a_monitor_url(world: World, watch: Any, settings: Any) -> None:
    settings.DOMAINS_CT_URL = ""
    watch()
    assert not Check.objects.filter(signal="ct").exists()
