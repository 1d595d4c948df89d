"""A healthy domain: the first run proposes a baseline per signal, nothing alerts; an approved
baseline makes every check ok."""

from typing import Any

import pytest

from domains.models import Alert, Baseline, Check, Observation, WatchedDomain
from tests.domains.conftest import open_alerts
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


def test_the_first_run_proposes_a_baseline_and_raises_nothing(world: World, watch: Any) -> None:
    result = watch()

    domain = WatchedDomain.objects.get(name=DOMAIN)
    checks = {c.signal: c for c in domain.checks.all()}
    assert result["checks"] == 8
    assert set(checks) == {"rdap", "dns", "tls", "ct", "content", "wellknown", "hsts", "onchain"}
    for signal, check in checks.items():
        assert check.last_error == "", (signal, check.last_error)
    assert {c.state for s, c in checks.items() if s not in ("hsts", "onchain")} == {"unknown"}
    assert checks["hsts"].state == "ok"
    assert Baseline.objects.filter(status="proposed").count() == 8
    assert open_alerts() == []


def test_what_each_signal_sees(world: World, watch: Any) -> None:
    watch()

    def seen(signal: str) -> dict[str, Any]:
        return dict(Observation.objects.get(check_ref__signal=signal).value)

    assert seen("rdap")["registrar_iana_id"] == "292"
    assert seen("rdap")["nameservers"] == ["ns1.example.test", "ns2.example.test"]
    assert seen("dns")["records"]["A"] == ["127.0.0.1"]
    assert seen("dns")["dnssec"] == "valid"
    tls = seen("tls")["certificates"]["127.0.0.1"]
    assert tls["verified"] is True and tls["sans"] == [DOMAIN]
    assert "Portal Test Trusted CA" in tls["issuer"]
    assert [c["id"] for c in seen("ct")["certificates"]] == ["1000"]
    assert set(seen("content")["hashes"]) == {
        "/login",
        "/signup",
        "/static/site.css",
        "/static/login.js",
    }
    assert seen("wellknown")["origins"] == ["https://app.example.test", "https://example.test"]
    assert seen("hsts")["max_age"] == 31536000


def test_an_approved_baseline_makes_every_check_ok(baselined: WatchedDomain) -> None:
    states = dict(Check.objects.values_list("signal", "state"))
    assert set(states.values()) == {"ok"}, states
    assert Alert.objects.count() == 0


def test_a_second_identical_run_adds_no_observation(baselined: WatchedDomain, watch: Any) -> None:
    before = Observation.objects.count()
    watch()
    assert Observation.objects.count() == before
