"""Where a person is signed in: each session and token records the passkey that holds it; deleting
that passkey ends them (and their sudo mode); a person lists them and signs them out."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, SignIn, TokenReauthentication
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.models import Passkey

pytestmark = pytest.mark.django_db

LAPTOP_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/140.0 Safari/537.36"


class Person:
    """alice with two passkeys: `laptop` (her sign-up passkey) and `phone`."""

    def __init__(self, api_client: APIClient) -> None:
        self.client = api_client
        self.laptop = SoftAuthenticator()
        self.phone = SoftAuthenticator()
        options = self.post(None, "/api/v1/auth/register/options", {"username": "alice"})
        verified = self.post(
            None,
            "/api/v1/auth/register/verify",
            {
                "ceremony_id": options.json()["ceremony_id"],
                "credential": self.laptop.create(options.json()["publicKey"]),
            },
        )
        self.signup_token = verified.json()["token"]
        options = self.post(self.signup_token, "/api/v1/passkeys/register/options")
        added = self.post(
            self.signup_token,
            "/api/v1/passkeys/register/verify",
            {
                "ceremony_id": options.json()["ceremony_id"],
                "credential": self.phone.create(options.json()["publicKey"]),
                "name": "Phone",
            },
        )
        assert added.status_code == 201, added.content
        self.laptop_passkey = Passkey.objects.get(name="Passkey")
        self.phone_passkey = Passkey.objects.get(name="Phone")

    @staticmethod
    def headers(token: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post(self, token: str | None, url: str, body: Any = None) -> Any:
        return self.client.post(url, body or {}, format="json", headers=self.headers(token))

    def get(self, token: str, url: str) -> Any:
        return self.client.get(url, headers=self.headers(token))

    def delete(self, token: str, url: str) -> Any:
        return self.client.delete(url, headers=self.headers(token))

    def login(self, authenticator: SoftAuthenticator, **headers: str) -> str:
        options = self.post(None, "/api/v1/auth/login/options").json()
        response = self.client.post(
            "/api/v1/auth/login/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.get(options["publicKey"]),
            },
            format="json",
            headers=headers,
        )
        assert response.status_code == 200, response.content
        return str(response.json()["token"])

    def reauthenticate(self, token: str, authenticator: SoftAuthenticator) -> None:
        options = self.post(token, "/api/v1/auth/reauth/options").json()
        response = self.post(
            token,
            "/api/v1/auth/reauth/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.get(options["publicKey"]),
            },
        )
        assert response.status_code == 200, response.content

    def browser(self, authenticator: SoftAuthenticator) -> Client:
        """A browser signed in on /login with `authenticator`'s passkey."""
        browser = Client(enforce_csrf_checks=True, HTTP_USER_AGENT=LAPTOP_AGENT)
        browser.get("/login")
        options = browser.post(
            "/api/v1/auth/login/options", {}, content_type="application/json"
        ).json()
        response = browser.post(
            "/login/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.get(options["publicKey"]),
            },
            content_type="application/json",
            headers={"X-CSRFToken": browser.cookies["csrftoken"].value},
        )
        assert response.status_code == 200, response.content
        return browser


@pytest.fixture
def alice(api_client: APIClient) -> Person:
    return Person(api_client)


def csrf(browser: Client) -> dict[str, str]:
    return {"X-CSRFToken": browser.cookies["csrftoken"].value}


# --- deleting a passkey ends what it signed in -------------------------------------------------


def test_deleting_a_passkey_revokes_the_tokens_it_signed_in(alice: Person) -> None:
    stolen = alice.login(alice.laptop)  # e.g. someone who has the laptop
    mine = alice.login(alice.phone)
    assert alice.get(stolen, "/api/v1/me").status_code == 200

    deleted = alice.delete(mine, f"/api/v1/passkeys/{alice.laptop_passkey.pk}")

    assert deleted.status_code == 204, deleted.content
    assert alice.get(stolen, "/api/v1/me").status_code == 401
    # Its sudo mode went with it: it cannot add a passkey of its own either.
    assert alice.post(stolen, "/api/v1/passkeys/register/options").status_code == 401
    assert alice.get(mine, "/api/v1/me").status_code == 200
    assert alice.get(alice.signup_token, "/api/v1/me").status_code == 401  # signed up with it
    ended = AuditEvent.objects.filter(kind=AuditEvent.Kind.SIGNIN_ENDED)
    assert ended.count() == 2
    assert {e.details["reason"] for e in ended} == {"passkey_deleted"}
    assert {e.details["passkey_id"] for e in ended} == {alice.laptop_passkey.pk}
    assert not TokenReauthentication.objects.filter(
        token__token_key__in=[stolen[:15], alice.signup_token[:15]]
    ).exists()


def test_deleting_a_passkey_ends_the_browser_sessions_it_signed_in(alice: Person) -> None:
    browser = alice.browser(alice.laptop)
    assert browser.get("/account").status_code == 200
    mine = alice.login(alice.phone)

    assert alice.delete(mine, f"/api/v1/passkeys/{alice.laptop_passkey.pk}").status_code == 204

    page = browser.get("/account")
    assert page.status_code == 302 and page["Location"].startswith("/login")
    assert browser.get("/api/v1/me").status_code in (401, 403)


def test_deleting_the_passkey_this_browser_signed_in_with_signs_it_out(alice: Person) -> None:
    browser = alice.browser(alice.laptop)

    response = browser.delete(f"/api/v1/passkeys/{alice.laptop_passkey.pk}", headers=csrf(browser))

    assert response.status_code == 204
    assert browser.get("/account").status_code == 302
    assert not SignIn.objects.filter(passkey=alice.laptop_passkey.pk).exists()


def test_a_confirmation_with_another_passkey_moves_the_sign_in_to_it(alice: Person) -> None:
    token = alice.login(alice.laptop)
    alice.reauthenticate(token, alice.phone)
    assert SignIn.objects.get(token__token_key=token[:15]).passkey == alice.phone_passkey

    assert alice.delete(token, f"/api/v1/passkeys/{alice.laptop_passkey.pk}").status_code == 204

    assert alice.get(token, "/api/v1/me").status_code == 200


# --- seeing where one is signed in ----------------------------------------------------------------


def test_me_signins_lists_browsers_and_tokens_with_their_passkey(alice: Person) -> None:
    alice.browser(alice.laptop)
    token = alice.login(alice.phone, **{"User-Agent": "my-cli/1.0"})

    response = alice.get(token, "/api/v1/me/signins")

    assert response.status_code == 200
    signins = response.json()
    assert len(signins) == 3  # the sign-up's token, the browser, this token
    by_kind = {(s["kind"], s["device"]) for s in signins}
    assert ("session", "Chrome on Linux") in by_kind
    assert ("token", "my-cli/1.0") in by_kind
    current = [s for s in signins if s["current"]]
    assert len(current) == 1 and current[0]["passkey"] == {
        "id": alice.phone_passkey.pk,
        "name": "Phone",
    }
    assert current[0]["ip_address"] == "203.0.113.7"
    assert {"created_at", "last_seen_at", "expires_at", "user_agent"} <= set(current[0])


def test_expired_sign_ins_are_not_listed(alice: Person) -> None:
    token = alice.login(alice.phone)
    SignIn.objects.exclude(token__token_key=token[:15]).update(expires_at=timezone.now())

    signins = alice.get(token, "/api/v1/me/signins").json()

    assert [s["current"] for s in signins] == [True]


def test_last_seen_follows_use_at_most_once_a_minute(alice: Person) -> None:
    token = alice.login(alice.phone)
    signin = SignIn.objects.get(token__token_key=token[:15])
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SignIn.objects.filter(pk=signin.pk).update(last_seen_at=an_hour_ago, ip_address="192.0.2.1")

    alice.get(token, "/api/v1/me")

    signin.refresh_from_db()
    assert signin.last_seen_at > an_hour_ago + timedelta(minutes=59)
    assert signin.ip_address == "203.0.113.7"


def test_a_browser_sign_in_is_seen_too(alice: Person) -> None:
    browser = alice.browser(alice.laptop)
    signin = SignIn.objects.get(kind=SignIn.Kind.SESSION)
    an_hour_ago = timezone.now() - timedelta(hours=1)
    SignIn.objects.filter(pk=signin.pk).update(last_seen_at=an_hour_ago)
    session = browser.session
    session["signin_seen_at"] = an_hour_ago.isoformat()
    session.save()

    browser.get("/account")

    signin.refresh_from_db()
    assert signin.last_seen_at > an_hour_ago + timedelta(minutes=59)


def test_the_account_page_shows_where_one_is_signed_in(alice: Person) -> None:
    browser = alice.browser(alice.laptop)

    page = browser.get("/account").content.decode()

    assert 'id="signins"' in page
    assert "Chrome on Linux" in page and "This browser" in page
    assert 'id="signout-others"' in page
    other = SignIn.objects.get(kind=SignIn.Kind.TOKEN)
    assert f'data-url="/api/v1/me/signins/{other.pk}"' in page


# --- signing out elsewhere ---------------------------------------------------------------------


def test_signing_out_another_sign_in_needs_sudo_mode(alice: Person) -> None:
    other = alice.login(alice.laptop)
    token = alice.login(alice.phone)
    other_id = SignIn.objects.get(token__token_key=other[:15]).pk
    AuthToken.objects.filter(token_key=token[:15]).update(
        created=timezone.now() - timedelta(minutes=6)  # signed in (and confirmed) long ago
    )

    refused = alice.delete(token, f"/api/v1/me/signins/{other_id}")
    assert refused.status_code == 403
    assert refused.json()["code"] == "reauthentication_required"
    assert alice.get(other, "/api/v1/me").status_code == 200

    alice.reauthenticate(token, alice.phone)
    response = alice.delete(token, f"/api/v1/me/signins/{other_id}")

    assert response.status_code == 204
    assert alice.get(other, "/api/v1/me").status_code == 401
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.SIGNIN_ENDED)
    assert event.details["reason"] == "signed_out_elsewhere"
    assert event.details["signin_id"] == other_id


def test_signing_out_here_is_a_logout_and_needs_no_sudo_mode(alice: Person) -> None:
    token = alice.login(alice.phone)
    here = SignIn.objects.get(token__token_key=token[:15]).pk
    AuthToken.objects.update(created=timezone.now() - timedelta(minutes=6))

    assert alice.delete(token, f"/api/v1/me/signins/{here}").status_code == 204

    assert alice.get(token, "/api/v1/me").status_code == 401
    assert not SignIn.objects.filter(pk=here).exists()


def test_someone_elses_sign_in_is_not_found(alice: Person, sign_up: Any) -> None:
    bob_token = sign_up("bob")["token"]
    alice_signin = SignIn.objects.filter(user__username="alice").first()
    assert alice_signin is not None

    response = alice.delete(bob_token, f"/api/v1/me/signins/{alice_signin.pk}")

    assert response.status_code == 404
    assert response.json()["code"] == "signin_not_found"
    assert SignIn.objects.filter(pk=alice_signin.pk).exists()


def test_sign_out_everywhere_else(alice: Person) -> None:
    browser = alice.browser(alice.laptop)
    other = alice.login(alice.laptop)
    token = alice.login(alice.phone)

    response = alice.post(token, "/api/v1/me/signins/end-others")

    assert response.status_code == 200
    assert response.json() == {"ended": 3}  # the sign-up's token, the browser, the other token
    assert alice.get(token, "/api/v1/me").status_code == 200
    assert alice.get(other, "/api/v1/me").status_code == 401
    assert browser.get("/account").status_code == 302
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.SIGNIN_ENDED).count() == 3


def test_sign_out_everywhere_else_needs_sudo_mode(alice: Person) -> None:
    token = alice.login(alice.phone)
    AuthToken.objects.update(created=timezone.now() - timedelta(minutes=6))

    response = alice.post(token, "/api/v1/me/signins/end-others")

    assert response.status_code == 403
    assert response.json()["code"] == "reauthentication_required"
    assert SignIn.objects.count() == 2


# --- logout --------------------------------------------------------------------------------------


def test_api_logout_with_a_browser_session_ends_it(alice: Person) -> None:
    browser = alice.browser(alice.laptop)

    response = browser.post("/api/v1/auth/logout", headers=csrf(browser))

    assert response.status_code == 204
    assert browser.get("/account").status_code == 302
    assert not SignIn.objects.filter(kind=SignIn.Kind.SESSION).exists()
    event = AuditEvent.objects.filter(kind=AuditEvent.Kind.LOGOUT).get()
    assert event.details == {"via": "api"}


def test_api_logout_with_a_browser_session_needs_its_csrf_token(alice: Person) -> None:
    browser = alice.browser(alice.laptop)

    response = browser.post("/api/v1/auth/logout")

    assert response.status_code == 403
    assert browser.get("/account").status_code == 200


def test_web_logout_ends_the_sign_in(alice: Person) -> None:
    browser = alice.browser(alice.laptop)

    browser.post("/logout", headers=csrf(browser))

    assert not SignIn.objects.filter(kind=SignIn.Kind.SESSION).exists()
