"""dns: NS, A/AAAA, CAA, DS/DNSKEY (validated) and TTLs, asked of every watched resolver."""

from typing import Any

import pytest
from dnslib.server import DNSLogger, DNSServer

from domains.models import Alert, Observation, WatchedDomain
from tests.domains.conftest import open_alerts, raised_once_then_closed
from tests.domains.world import World, Zone, signed_keys

pytestmark = pytest.mark.django_db


def _set(world: World, rdtype: str, values: list[str], ttl: int | None = None) -> None:
    old_ttl, _ = world.zone.records.get(rdtype, (300, []))
    world.zone.records[rdtype] = (ttl if ttl is not None else old_ttl, values)


def test_new_nameservers_are_critical(world: World, baselined: WatchedDomain, watch: Any) -> None:
    alert = raised_once_then_closed(
        watch=watch,
        signal="dns",
        kind="nameservers_changed",
        change=lambda: _set(world, "NS", ["ns1.attacker.test."]),
        revert=lambda: _set(world, "NS", ["ns1.example.test.", "ns2.example.test."]),
    )
    assert alert.value == {"value": ["ns1.attacker.test."]}


def test_new_nameservers_with_new_addresses_is_one_alert(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    _set(world, "NS", ["ns1.attacker.test."])
    _set(world, "A", ["127.0.0.2"])
    watch(["dns"])
    assert [a.kind for a in open_alerts()] == ["nameservers_changed"]


def test_a_new_address_with_the_same_nameservers_is_high(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    raised_once_then_closed(
        watch=watch,
        signal="dns",
        kind="address_changed",
        change=lambda: _set(world, "AAAA", ["::1"]),
        revert=lambda: _set(world, "AAAA", []),
        severity="high",
    )


def test_a_caa_change_is_critical(world: World, baselined: WatchedDomain, watch: Any) -> None:
    raised_once_then_closed(
        watch=watch,
        signal="dns",
        kind="caa_changed",
        change=lambda: _set(world, "CAA", ['0 issue "rogue.test"']),
        revert=lambda: _set(world, "CAA", ['0 issue "trusted.test"']),
    )


def test_a_new_dnssec_key_is_critical(world: World, baselined: WatchedDomain, watch: Any) -> None:
    approved = (world.zone.records["DS"], world.zone.records["DNSKEY"], world.zone.records["RRSIG"])
    dnskey, rrsig, ds = signed_keys()

    def change() -> None:
        _set(world, "DS", [ds])
        _set(world, "DNSKEY", [dnskey])
        _set(world, "RRSIG", [rrsig])

    def revert() -> None:
        world.zone.records["DS"], world.zone.records["DNSKEY"], world.zone.records["RRSIG"] = (
            approved
        )

    alert = raised_once_then_closed(
        watch=watch, signal="dns", kind="dnssec_changed", change=change, revert=revert
    )
    assert alert.value["status"] == "valid"


def test_dnssec_that_no_longer_validates_is_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    _, other_signature, _ = signed_keys()  # a signature by another key
    approved = world.zone.records["RRSIG"]

    alert = raised_once_then_closed(
        watch=watch,
        signal="dns",
        kind="dnssec_changed",
        change=lambda: _set(world, "RRSIG", [other_signature]),
        revert=lambda: world.zone.records.__setitem__("RRSIG", approved),
    )
    assert alert.value["status"].startswith("invalid")


def test_dropped_ttls_warn(world: World, baselined: WatchedDomain, watch: Any) -> None:
    alert = raised_once_then_closed(
        watch=watch,
        signal="dns",
        kind="ttl_dropped",
        change=lambda: _set(world, "NS", world.zone.records["NS"][1], ttl=60),
        revert=lambda: _set(world, "NS", world.zone.records["NS"][1], ttl=3600),
        severity="warning",
    )
    assert alert.value == {"NS": 60}


def test_every_resolver_is_asked(world: World, watch: Any, settings: Any) -> None:
    zone = Zone()  # a second server with another answer
    zone.records = {**world.zone.records, "A": (300, ["127.0.0.2"])}
    server = DNSServer(zone, port=0, address="127.0.0.1", logger=DNSLogger(logf=lambda _: None))
    server.start_thread()
    try:
        settings.DOMAINS_DNS_RESOLVERS = [
            f"127.0.0.1:{world.dns_port}",
            f"127.0.0.1:{server.server.server_address[1]}",
        ]
        watch(["dns"])
    finally:
        server.stop()
    value = Observation.objects.get(check_ref__signal="dns").value
    assert value["records"]["A"] == ["127.0.0.1", "127.0.0.2"]
    assert len(value["resolvers"]) == 2
    assert Alert.objects.count() == 0  # no baseline yet
