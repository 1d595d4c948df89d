"""What the watch cannot see is `unknown`, with why; it never crashes the run, never flips an
alert, and the other checks still run."""

from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from domains.models import Alert, Check, WatchedDomain
from tests.domains.world import DOMAIN, World

pytestmark = pytest.mark.django_db


def states() -> dict[str, tuple[str, str]]:
    return {c.signal: (c.state, c.summary) for c in Check.objects.all()}


def test_rdap_that_is_not_json(world: World, watch: Any, httpserver: HTTPServer) -> None:
    httpserver.clear_all_handlers()
    httpserver.expect_request("/bootstrap.json").respond_with_json(
        {"services": [[["test"], [httpserver.url_for("/rdap/")]]]}
    )
    httpserver.expect_request(f"/rdap/domain/{DOMAIN}").respond_with_data("<html>")
    watch(["rdap", "hsts"])
    state, summary = states()["rdap"]
    assert state == "unknown" and summary.endswith("not JSON")
    assert states()["hsts"][0] == "ok"


def test_rdap_with_odd_shapes_is_read_as_far_as_it_goes(world: World, watch: Any) -> None:
    world.rdap.update(entities="x", status=None, nameservers=[1, {"ldhName": "NS1.Example.TEST."}])
    watch(["rdap"])
    check = Check.objects.get(signal="rdap")
    assert check.last_error == ""
    value = check.observations.get().value
    assert value["registrar_iana_id"] == "" and value["nameservers"] == ["ns1.example.test"]


def test_a_tld_without_an_rdap_service(world: World, watch: Any, settings: Any) -> None:
    settings.DOMAINS_WATCH = ["example.invalid"]
    settings.DOMAINS_SIGNALS = ["rdap"]
    WatchedDomain.objects.all().delete()
    watch()
    assert states()["rdap"] == (
        "unknown",
        "no RDAP service for example.invalid in the bootstrap file",
    )


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"status": 500}, "CT monitor: HTTP 500"),
        ({"json": [{"dns_names": []}]}, "CT monitor: an issuance without an id"),
        ({"data": "nope"}, "CT monitor: not JSON"),
    ],
)
def test_a_ct_monitor_that_fails(
    world: World, watch: Any, httpserver: HTTPServer, answer: dict[str, Any], why: str
) -> None:
    httpserver.clear_all_handlers()
    if "status" in answer:
        httpserver.expect_request("/ct/v1/issuances").respond_with_data("", status=answer["status"])
    elif "json" in answer:
        httpserver.expect_request("/ct/v1/issuances").respond_with_json(answer["json"])
    else:
        httpserver.expect_request("/ct/v1/issuances").respond_with_data(answer["data"])
    watch(["ct"])
    assert states()["ct"] == ("unknown", why)


def test_no_resolver_answers(world: World, watch: Any, settings: Any) -> None:
    settings.DOMAINS_DNS_RESOLVERS = ["127.0.0.1:9"]  # nothing listens there
    settings.DOMAINS_TIMEOUT_SECONDS = 0.5
    watch(["dns", "tls", "content"])
    found = states()
    assert {signal: state for signal, (state, _) in found.items()} == {
        "dns": "unknown",
        "tls": "unknown",
        "content": "unknown",
    }
    assert "127.0.0.1:9 did not answer" in found["dns"][1]


def test_nothing_listens_at_the_address(
    world: World, baselined: WatchedDomain, watch: Any, settings: Any
) -> None:
    world.zone.records["A"] = (300, ["127.0.0.1"])
    settings.DOMAINS_HTTPS_PORT = 9  # closed
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])
    world.zone.records["CAA"] = (3600, ['0 issue "trusted.test"'])
    watch(["tls", "content", "hsts"])
    found = states()
    assert found["tls"][0] == found["content"][0] == found["hsts"][0] == "unknown"
    assert "Connection refused" in found["tls"][1]
    # The DNS alert is untouched by the failing checks, and closes on its own revert.
    watch(["dns"])
    assert Alert.objects.get().closed_reason == "reverted"
