"""The watch watches itself: a check that has not run for three periods is stale and alerts."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from domains.models import Alert, Check
from domains.selectors import effective_state
from tests.domains.world import World

pytestmark = pytest.mark.django_db


def test_a_check_that_stops_running_goes_stale_once_and_recovers(
    world: World, watch: Any, settings: Any
) -> None:
    settings.DOMAINS_SIGNALS = ["hsts", "wellknown"]
    settings.DOMAINS_CHECK_SECONDS = 60
    watch()

    with time_machine.travel(timezone.now() + timedelta(seconds=150)):
        watch(["hsts"])  # the wellknown check is late, not yet stale
        assert Alert.objects.count() == 0
    with time_machine.travel(timezone.now() + timedelta(seconds=200)):
        watch(["hsts"])
        watch(["hsts"])
        check = Check.objects.get(signal="wellknown")
        assert check.state == "stale" and effective_state(check) == "stale"
        alert = Alert.objects.get()
        assert (alert.kind, alert.signal, alert.severity) == ("check_stale", "wellknown", "warning")
        assert Check.objects.get(signal="hsts").state == "ok"

        watch(["wellknown"])

    alert.refresh_from_db()
    assert alert.status == "closed" and alert.closed_reason == "reverted"
    assert Check.objects.get(signal="wellknown").state != "stale"
