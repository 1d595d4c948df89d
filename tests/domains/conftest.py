from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from domains import probes
from domains.models import Alert, Signal, WatchedDomain
from domains.services import approve_baseline, run_watch
from tests.domains.world import DOMAIN, World


@pytest.fixture
def world(tmp_path: Path, httpserver: Any, settings: Any) -> Iterator[World]:
    """The watched domain, healthy, on loopback; the portal's watch settings point at it."""
    built = World(tmp_path=tmp_path, httpserver=httpserver)
    for name, value in built.settings().items():
        setattr(settings, name, value)
    settings.DOMAINS_ALERT_EMAILS = []
    settings.DOMAINS_WEBHOOK_URL = ""
    probes._bootstrap_cache.clear()
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def operator(db: None) -> Any:
    from accounts.models import User

    return User.objects.create_user("operator", is_staff=True)


@pytest.fixture
def watch(db: None) -> Callable[..., dict[str, Any]]:
    def _watch(signals: list[str] | None = None) -> dict[str, Any]:
        return run_watch(signals=signals)

    return _watch


@pytest.fixture
def baselined(world: World, watch: Any, operator: Any) -> WatchedDomain:
    """The healthy domain watched once and its baseline approved: every check is ok."""
    watch()
    domain = WatchedDomain.objects.get(name=DOMAIN)
    approve_baseline(domain=domain, actor=operator, client=None)
    return domain


def open_alerts(signal: str | None = None) -> list[Alert]:
    found = Alert.objects.filter(status=Alert.Status.OPEN)
    if signal:
        found = found.filter(signal=signal)
    return list(found.order_by("id"))


SIGNALS = list(Signal.values)


def raised_once_then_closed(
    *,
    watch: Callable[..., Any],
    signal: str,
    kind: str,
    change: Callable[[], object],
    revert: Callable[[], object],
    severity: str = "critical",
) -> Alert:
    """Make the change, watch twice (one alert, not two), revert it, watch: the alert is closed."""
    change()
    watch([signal])
    watch([signal])
    raised = list(Alert.objects.filter(signal=signal, kind=kind))
    assert len(raised) == 1, [(a.kind, a.summary) for a in Alert.objects.all()]
    alert = raised[0]
    assert alert.status == "open" and alert.severity == severity, (alert.status, alert.severity)
    others = [a.kind for a in open_alerts() if a.pk != alert.pk]
    assert others == [], f"the change raised more than {kind}: {others}"
    revert()
    watch([signal])
    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_reason == "reverted", alert.closed_reason
    assert open_alerts() == []
    return alert


@pytest.fixture
def staff_client(operator: Any) -> Any:
    from django.test import Client

    client = Client()
    client.force_login(operator)
    return client
