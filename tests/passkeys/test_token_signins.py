"""What an API sign-in writes (passkeys.token_signins): one statement on PostgreSQL, the ORM
elsewhere, the same rows either way; no sign-in when the passkey went away meanwhile or when a
concurrent verify used the ceremony first."""

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from accounts.models import AuditEvent, SignIn
from chain.devtools.authenticator import SoftAuthenticator
from passkeys.ceremonies import LoginCeremony, new_login_ceremony
from passkeys.models import Ceremony, Passkey
from passkeys.token_signins import (
    Written,
    record_token_sign_in,
    sign_in_rows,
    write_in_one_statement,
    write_with_orm,
)
from portal.client_info import ClientInfo
from portal.errors import PortalError

pytestmark = pytest.mark.django_db

Writer = Callable[..., Written]
CLIENT = ClientInfo(ip_address="198.51.100.7", user_agent="Firefox on a laptop")


def verified_passkey(sign_count: int) -> Passkey:
    """Alice's passkey as a verify leaves it: its new use set on it, not yet written."""
    passkey = Passkey.objects.select_related("user").get()
    passkey.sign_count, passkey.backed_up, passkey.last_used_at = sign_count, True, timezone.now()
    return passkey


def new_ceremony() -> LoginCeremony:
    return new_login_ceremony(expected_user_id=None, named=False)[0]


def written_by(writer: Writer, sign_count: int) -> dict[str, Any]:
    """What `writer` wrote for one sign-in, minus what differs by nature (ids, times, digests)."""
    passkey = verified_passkey(sign_count)
    ceremony = new_ceremony()
    rows = sign_in_rows(ceremony=ceremony, passkey=passkey, client=CLIENT)
    assert writer(passkey=passkey, rows=rows) == Written(ceremony_used_up=True, signed_in=True)
    used = Ceremony.objects.get(ceremony_id=ceremony.ceremony_id)
    event = AuditEvent.objects.filter(kind="login_succeeded").latest("id")
    token = AuthToken.objects.get(digest=rows.new.auth_token.digest)
    signin = SignIn.objects.get(token=token)
    stored = Passkey.objects.get(pk=passkey.pk)
    return {
        "ceremony": (
            used.purpose,
            used.expires_at == ceremony.expires_at,
            used.consumed_at is not None,
        ),
        "passkey": (
            stored.sign_count,
            stored.backed_up,
            stored.last_used_at == passkey.last_used_at,
        ),
        "event": (event.user_id, event.ip_address, event.user_agent, event.details),
        "token": (token.user_id, round((token.expiry - token.created).total_seconds())),
        "signin": (
            signin.user_id,
            signin.kind,
            signin.passkey_id,
            signin.session_key,
            signin.ip_address,
            signin.user_agent,
            signin.expires_at == token.expiry,
            signin.created_at == signin.last_seen_at,
        ),
    }


@pytest.mark.postgresql
def test_one_statement_writes_what_the_orm_writes(sign_up: Any) -> None:
    sign_up("alice")

    in_one = written_by(write_in_one_statement, sign_count=7)
    with_orm = written_by(write_with_orm, sign_count=8)

    assert in_one["ceremony"] == with_orm["ceremony"] == ("authentication", True, True)
    assert in_one["passkey"] == (7, True, True)
    assert with_orm["passkey"] == (8, True, True)
    assert in_one["event"] == with_orm["event"]
    passkey_id = Passkey.objects.get().pk
    assert in_one["event"][1:] == (
        "198.51.100.7",
        "Firefox on a laptop",
        {"passkey_id": passkey_id},
    )
    assert in_one["token"] == with_orm["token"]
    assert in_one["signin"] == with_orm["signin"]
    assert in_one["signin"][1:4] == ("token", passkey_id, None)


@pytest.mark.parametrize(
    "writer", [pytest.param(write_in_one_statement, marks=pytest.mark.postgresql), write_with_orm]
)
def test_a_passkey_deleted_since_it_was_read_signs_nobody_in(sign_up: Any, writer: Writer) -> None:
    sign_up("alice")
    passkey = verified_passkey(sign_count=3)
    Passkey.objects.filter(pk=passkey.pk).delete()  # and the sign-up's token with it
    tokens = AuthToken.objects.count()
    ceremony = new_ceremony()
    rows = sign_in_rows(ceremony=ceremony, passkey=passkey, client=CLIENT)

    written = writer(passkey=passkey, rows=rows)

    assert written == Written(ceremony_used_up=True, signed_in=False)
    assert Ceremony.objects.filter(
        ceremony_id=ceremony.ceremony_id
    ).exists()  # used up all the same
    assert not AuditEvent.objects.filter(kind="login_succeeded").exists()
    assert AuthToken.objects.count() == tokens
    assert not SignIn.objects.filter(kind="token", passkey_id=passkey.pk).exists()


@pytest.mark.parametrize(
    "writer", [pytest.param(write_in_one_statement, marks=pytest.mark.postgresql), write_with_orm]
)
def test_a_ceremony_used_meanwhile_signs_nobody_in(sign_up: Any, writer: Writer) -> None:
    sign_up("alice")
    passkey = verified_passkey(sign_count=3)
    ceremony = new_ceremony()
    first = sign_in_rows(ceremony=ceremony, passkey=passkey, client=CLIENT)
    assert writer(passkey=passkey, rows=first) == Written(ceremony_used_up=True, signed_in=True)
    passkey.sign_count = 4
    second = sign_in_rows(ceremony=ceremony, passkey=passkey, client=CLIENT)

    written = writer(passkey=passkey, rows=second)

    assert written == Written(ceremony_used_up=False, signed_in=False)
    assert Passkey.objects.get(pk=passkey.pk).sign_count == 3
    assert AuditEvent.objects.filter(kind="login_succeeded").count() == 1
    assert not AuthToken.objects.filter(digest=second.new.auth_token.digest).exists()


@pytest.mark.parametrize(
    ("delete_passkey", "use_ceremony", "code", "status"),
    [(True, False, "unknown_credential", 400), (False, True, "ceremony_used", 409)],
)
def test_record_token_sign_in_refuses_a_deleted_passkey_or_a_used_ceremony(
    sign_up: Any, delete_passkey: bool, use_ceremony: bool, code: str, status: int
) -> None:
    sign_up("alice")
    passkey = verified_passkey(sign_count=3)
    ceremony = new_ceremony()
    if delete_passkey:
        Passkey.objects.filter(pk=passkey.pk).delete()
    if use_ceremony:
        record_token_sign_in(ceremony=ceremony, passkey=passkey, client=CLIENT)

    with pytest.raises(PortalError) as refused:
        record_token_sign_in(ceremony=ceremony, passkey=passkey, client=CLIENT)

    assert refused.value.code == code
    assert refused.value.status_code == status


@pytest.mark.postgresql
def test_a_sign_in_is_prepared_by_postgresql_once_it_repeats(
    api_client: APIClient,
    authenticator: SoftAuthenticator,
    sign_up: Any,
    login_options: Callable[..., dict[str, Any]],
) -> None:
    """After a few sign-ins on a connection, their statements are prepared: PostgreSQL no longer
    parses and plans them (DATABASE_PREPARED_STATEMENTS, on by default)."""
    sign_up("alice")
    for _ in range(7):
        options = login_options("alice")
        body = {
            "ceremony_id": options["ceremony_id"],
            "credential": authenticator.get(options["publicKey"]),
        }
        assert api_client.post("/api/v1/auth/login/verify", body, format="json").status_code == 200

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]

    assert any(statement.startswith("WITH consumed AS (INSERT") for statement in prepared)
    assert any("FROM passkeys_passkey passkey JOIN accounts_user" in s for s in prepared)


@pytest.mark.postgresql
def test_a_sign_in_costs_one_statement_for_its_options_and_two_for_its_verify(
    api_client: APIClient,
    authenticator: SoftAuthenticator,
    sign_up: Any,
    login_options: Callable[..., dict[str, Any]],
) -> None:
    """What bench/login.py reports, kept from growing back: the options read the user's passkeys;
    the verify reads the passkey (and whether the ceremony was used), then writes the sign-in with
    its ceremony used up."""
    sign_up("alice")

    with CaptureQueriesContext(connection) as options_statements:
        options = login_options("alice")
    body = {
        "ceremony_id": options["ceremony_id"],
        "credential": authenticator.get(options["publicKey"]),
    }
    with CaptureQueriesContext(connection) as verify_statements:
        response = api_client.post("/api/v1/auth/login/verify", body, format="json")

    assert response.status_code == 200
    assert len(options_statements) == 1
    assert [query["sql"].split()[:3] for query in verify_statements] == [
        ["SELECT", "EXISTS", "(SELECT"],
        ["WITH", "consumed", "AS"],
    ]
