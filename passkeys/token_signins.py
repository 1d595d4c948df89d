"""What an API sign-in writes once its passkey is verified: its ceremony used up, the passkey's use,
the audit event, the token and its sign-in.

On PostgreSQL that is one statement (data-modifying WITH queries), atomic by itself and one round
trip and one commit instead of seven statements (BEGIN, two INSERTs, an UPDATE, three INSERTs,
COMMIT) in two transactions: the sign-in is the portal's busiest write, and its round trips and
commits cost more than the rest of the verify. Other databases (SQLite for `make run`) get the
same rows from the ORM in one transaction. Both write the rows that accounts.services builds
(new_event, new_token_sign_in).
"""

from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import transaction
from knox.models import AuthToken

from accounts.models import AuditEvent, SignIn
from accounts.services import TokenSignIn, new_event, new_token_sign_in
from passkeys.ceremonies import (
    PASSKEY_USE_FIELDS,
    LoginCeremony,
    ceremony_used,
    ceremony_values,
    insert_unless_taken,
    insert_unless_taken_sql,
    record_passkey_use,
    unknown_credential,
    used_login_ceremony,
)
from passkeys.models import Passkey
from portal.client_info import ClientInfo
from portal.db import default_database


@dataclass(frozen=True)
class SignInRows:
    """What a token sign-in writes besides the passkey's use, not yet saved."""

    used: dict[str, Any]
    event: AuditEvent
    new: TokenSignIn


@dataclass(frozen=True)
class Written:
    ceremony_used_up: bool  # False: a concurrent verify used it first, nothing written
    signed_in: bool  # False: the passkey is gone (the ceremony is used up all the same)


def record_token_sign_in(*, ceremony: LoginCeremony, passkey: Passkey, client: ClientInfo) -> str:
    """Record the sign-in of `passkey` (verified, its new sign count set on it), using up its
    ceremony, and answer its new API token. Refused (409 `ceremony_used`) when a concurrent
    verify used the ceremony first, and (400 `unknown_credential`) when the passkey was deleted
    since it was read: no sign-in is written then."""
    rows = sign_in_rows(ceremony=ceremony, passkey=passkey, client=client)
    if default_database().vendor == "postgresql":
        written = write_in_one_statement(passkey=passkey, rows=rows)
    else:
        written = write_with_orm(passkey=passkey, rows=rows)
    if not written.ceremony_used_up:
        raise ceremony_used()
    if not written.signed_in:
        raise unknown_credential()
    return rows.new.token


def sign_in_rows(*, ceremony: LoginCeremony, passkey: Passkey, client: ClientInfo) -> SignInRows:
    return SignInRows(
        used=used_login_ceremony(ceremony),
        event=new_event(
            kind=AuditEvent.Kind.LOGIN_SUCCEEDED,
            user=passkey.user,
            client=client,
            passkey_id=passkey.pk,
        ),
        new=new_token_sign_in(user=passkey.user, passkey=passkey, client=client),
    )


def write_with_orm(*, passkey: Passkey, rows: SignInRows) -> Written:
    """The rows, one statement each, in one transaction."""
    with transaction.atomic():
        if not insert_unless_taken(rows.used):
            return Written(ceremony_used_up=False, signed_in=False)
        if not record_passkey_use(passkey=passkey):
            return Written(ceremony_used_up=True, signed_in=False)
        rows.event.save(force_insert=True)
        rows.new.auth_token.save(force_insert=True)
        rows.new.signin.save(force_insert=True)
    return Written(ceremony_used_up=True, signed_in=True)


def write_in_one_statement(*, passkey: Passkey, rows: SignInRows) -> Written:
    """The rows in one PostgreSQL statement."""
    db = default_database()
    params = ceremony_values(db, rows.used)
    params += [field.get_db_prep_save(getattr(passkey, field.attname), db) for field in _USE_FIELDS]
    params.append(passkey.pk)
    row: Any
    for row in (rows.event, rows.new.auth_token, rows.new.signin):
        params += [
            field.get_db_prep_save(field.pre_save(row, True), db)  # as save() would
            for field in _INSERTED[type(row)]
        ]
    with db.cursor() as cursor:
        cursor.execute(_one_statement(db.vendor, tuple(rows.used)), params)
        used_up, signed_in = cursor.fetchone()
    return Written(ceremony_used_up=bool(used_up), signed_in=bool(signed_in))


_USE_FIELDS: tuple[Any, ...] = tuple(Passkey._meta.get_field(name) for name in PASSKEY_USE_FIELDS)


def _inserted_fields(model: Any) -> list[Any]:
    """A table's columns as the ORM's save writes them (an automatic primary key is the
    database's)."""
    return [field for field in model._meta.concrete_fields if not field.db_returning]


_INSERTED = {model: _inserted_fields(model) for model in (AuditEvent, AuthToken, SignIn)}


@cache
def _one_statement(vendor: str, ceremony_columns: tuple[str, ...]) -> str:
    """The ceremony's INSERT writes unless a concurrent verify wrote it first; the UPDATE of the
    passkey's use runs only if it did, and finds the passkey or nothing; each other INSERT
    writes only if it did. Parameters: the used ceremony's columns, the passkey's use fields
    and id, then each row's _INSERTED columns in turn."""
    quote = default_database().ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in _USE_FIELDS)
    parts = [
        f"consumed AS ({insert_unless_taken_sql(vendor, ceremony_columns)} RETURNING 1)",
        f"used AS (UPDATE {quote(Passkey._meta.db_table)} SET {assignments} "  # noqa: S608 - names from the models
        f"WHERE {quote(Passkey._meta.pk.column)} = %s "  # type: ignore[union-attr]
        "AND EXISTS (SELECT FROM consumed) RETURNING 1)",
    ]
    for name, (model, fields) in zip(("event", "token", "signin"), _INSERTED.items(), strict=True):
        columns = ", ".join(quote(field.column) for field in fields)
        placeholders = ", ".join(["%s"] * len(fields))
        parts.append(
            f"{name} AS (INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
            f"SELECT {placeholders} FROM used)"
        )
    return (
        f"WITH {', '.join(parts)} "  # noqa: S608
        "SELECT EXISTS (SELECT FROM consumed), EXISTS (SELECT FROM used)"
    )
