"""rdap: the registrar, the registration's status phrases (RFC 8056) and its expiry."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from domains.models import Alert, Check, WatchedDomain
from tests.domains.conftest import raised_once_then_closed
from tests.domains.world import World

pytestmark = pytest.mark.django_db


def test_a_new_registrar_is_critical(world: World, baselined: WatchedDomain, watch: Any) -> None:
    registrar = world.rdap["entities"][0]

    def change() -> None:
        registrar["publicIds"] = [{"type": "IANA Registrar ID", "identifier": "9999"}]

    def revert() -> None:
        registrar["publicIds"] = [{"type": "IANA Registrar ID", "identifier": "292"}]

    alert = raised_once_then_closed(
        watch=watch, signal="rdap", kind="registrar_changed", change=change, revert=revert
    )
    assert "9999" in alert.summary


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (
            ["active", "server delete prohibited"],
            {"removed_locks": ["client transfer prohibited"], "added": []},
        ),
        (
            [
                "active",
                "client transfer prohibited",
                "server delete prohibited",
                "pending transfer",
            ],
            {"removed_locks": [], "added": ["pending transfer"]},
        ),
        (
            ["client transfer prohibited", "server delete prohibited", "server hold"],
            {"removed_locks": [], "added": ["server hold"]},
        ),
        (
            ["client transfer prohibited", "server delete prohibited", "redemption period"],
            {"removed_locks": [], "added": ["redemption period"]},
        ),
    ],
)
def test_a_removed_lock_or_a_transfer_hold_or_redemption_is_critical(
    world: World, baselined: WatchedDomain, watch: Any, statuses: list[str], expected: Any
) -> None:
    approved = list(world.rdap["status"])

    alert = raised_once_then_closed(
        watch=watch,
        signal="rdap",
        kind="registration_status_changed",
        change=lambda: world.rdap.update(status=statuses),
        revert=lambda: world.rdap.update(status=approved),
    )
    assert alert.value == expected


def test_a_harmless_status_change_raises_nothing(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    world.rdap["status"] = [*world.rdap["status"], "client update prohibited"]
    watch(["rdap"])
    assert Check.objects.get(signal="rdap").state == "ok"


def _expires_in(world: World, days: int) -> None:
    when = datetime.now(tz=UTC) + timedelta(days=days)
    world.rdap["events"][1]["eventDate"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(("days", "severity"), [(45, "warning"), (20, "high")])
def test_expiry_near_warns_under_60_days_and_is_high_under_30(
    world: World, baselined: WatchedDomain, watch: Any, days: int, severity: str
) -> None:
    alert = raised_once_then_closed(
        watch=watch,
        signal="rdap",
        kind="expiry_near",
        change=lambda: _expires_in(world, days),
        revert=lambda: _expires_in(world, 400),  # renewed
        severity=severity,
    )
    assert alert.value == {"what": "registration", "under_days": 30 if days < 30 else 60}
    assert f"{days - 1} days left" in alert.summary or f"{days} days left" in alert.summary


def test_an_unreachable_rdap_service_is_unknown_and_closes_nothing(
    world: World, baselined: WatchedDomain, watch: Any, httpserver: Any
) -> None:
    world.rdap["entities"][0]["publicIds"] = [{"type": "IANA Registrar ID", "identifier": "1"}]
    watch(["rdap"])
    httpserver.clear_all_handlers()  # the RDAP service goes away

    watch(["rdap"])

    check = Check.objects.get(signal="rdap")
    assert check.state == "unknown"
    assert "HTTP 500" in check.summary
    assert Alert.objects.get(kind="registrar_changed").status == "open"
