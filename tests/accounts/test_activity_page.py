"""/account/activity: the person's own audit events, newest first, fifty to a page."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from accounts.models import AuditEvent, User

pytestmark = pytest.mark.django_db

CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
START = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ada() -> User:
    return User.objects.create_user("ada")


@pytest.fixture
def signed_in(client: Client, ada: User) -> Client:
    client.force_login(ada)
    return client


def rows(html: str) -> list[str]:
    body = re.search(r"<tbody>(.*)</tbody>", html, re.S)
    assert body, "no activity table"
    found = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", row).split()) for row in found]


def event(user: User | None, kind: str, minutes: int, **fields: object) -> AuditEvent:
    return AuditEvent.objects.create(
        user=user, kind=kind, created_at=START + timedelta(minutes=minutes), **fields
    )


def test_anonymous_visitors_are_sent_to_sign_in(client: Client) -> None:
    assert client.get("/account/activity")["Location"] == "/login?next=/account/activity"


def test_nothing_yet(signed_in: Client) -> None:
    html = signed_in.get("/account/activity").text

    assert "Nothing has happened on your account yet." in html
    assert "<table" not in html


def test_the_persons_events_newest_first_with_their_details(signed_in: Client, ada: User) -> None:
    event(ada, "signup", 0, ip_address="203.0.113.7", user_agent=CHROME, details={"via": "web"})
    event(
        ada,
        "login_failed",
        5,
        ip_address="198.51.100.2",
        user_agent="curl/8.5.0",
        details={"reason": "unknown_credential"},
    )
    event(ada, "passkey_renamed", 10, details={"old_name": "Passkey", "name": "Laptop"})
    event(User.objects.create_user("mallory"), "signup", 20, ip_address="192.0.2.66")
    event(None, "login_failed", 30, ip_address="192.0.2.99")

    html = signed_in.get("/account/activity").text

    assert rows(html) == [
        "1 May 2026, 12:10 UTC Passkey renamed “Passkey” → “Laptop” — —",
        "1 May 2026, 12:05 UTC Sign-in refused Reason: a passkey the portal does not know "
        "198.51.100.2 curl/8.5.0",
        "1 May 2026, 12:00 UTC Signed up via web 203.0.113.7 Chrome on Linux",
    ]
    assert f'title="{CHROME}"' in html
    assert "192.0.2" not in html


def test_an_unknown_reason_code_is_still_shown(signed_in: Client, ada: User) -> None:
    event(ada, "login_failed", 0, details={"reason": "something_new", "during": "reauthentication"})

    assert rows(signed_in.get("/account/activity").text) == [
        "1 May 2026, 12:00 UTC Sign-in refused Reason: something new · during reauthentication — —"
    ]


def test_a_long_unknown_user_agent_is_shortened(signed_in: Client, ada: User) -> None:
    event(ada, "login_succeeded", 0, user_agent="x" * 300)

    html = signed_in.get("/account/activity").text

    assert "x" * 39 + "…" in html
    assert "x" * 41 + "<" not in html


def test_pages_of_fifty_with_links_both_ways(signed_in: Client, ada: User) -> None:
    for minute in range(120):
        event(ada, "login_succeeded", minute)

    first = signed_in.get("/account/activity").text
    second = signed_in.get("/account/activity?page=2").text
    last = signed_in.get("/account/activity?page=3").text

    assert len(rows(first)) == 50 and rows(first)[0].startswith("1 May 2026, 13:59 UTC")
    assert 'id="older" href="?page=2"' in first and 'id="newer"' not in first
    assert "Page 1 of 3" in first
    assert 'id="newer" href="?page=1"' in second and 'id="older" href="?page=3"' in second
    assert len(rows(last)) == 20 and 'id="older"' not in last
    assert rows(last)[-1].startswith("1 May 2026, 12:00 UTC")
    # Out-of-range or malformed page numbers land on a real page.
    assert len(rows(signed_in.get("/account/activity?page=99").text)) == 20
    assert len(rows(signed_in.get("/account/activity?page=x").text)) == 50


def test_a_single_page_has_no_pagination(signed_in: Client, ada: User) -> None:
    event(ada, "signup", 0)

    assert 'aria-label="Activity pages"' not in signed_in.get("/account/activity").text


def test_the_page_is_free_of_inline_script_and_style(signed_in: Client, ada: User) -> None:
    event(ada, "signup", 0, user_agent='"><script>alert(1)</script>')

    html = signed_in.get("/account/activity").text

    assert "<script>alert" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert not re.search(r"\sstyle=", html)
