import json
from functools import cache
from typing import Any, cast

from django.conf import settings
from django.db import connection
from django.db.models import Model, QuerySet, Value
from django.db.models.functions import Lower
from django.dispatch import Signal

from accounts.models import User
from accounts.selectors import smart_account_of
from passkeys.models import AuthenticatorProvider, Passkey
from passkeys.webauthn import CredentialDescriptor
from portal.db import default_database

AT_RISK_SINGLE_PASSKEY = "single_passkey"
AT_RISK_NO_SYNCED_PASSKEY = "no_synced_passkey"

# Asked by `account_resilience` with `user=`: feature apps (e.g. recovery's guardians) answer
# {"facts": {name: number}, "warnings": [code, ...], "notes": [{code, text, url, action}]},
# merged into the resilience card (notes are what the card says and links to) without passkeys
# importing them.
resilience_facts = Signal()


def passkeys_of(*, user: User) -> QuerySet[Passkey]:
    return Passkey.objects.filter(user=user).order_by("created_at", "id")


def with_providers(passkeys: list[Passkey]) -> list[Passkey]:
    """Attach each passkey's catalog entry (or None) as `.provider`, in one query."""
    aaguids = {p.aaguid for p in passkeys if p.aaguid}
    providers = {p.aaguid: p for p in AuthenticatorProvider.objects.filter(aaguid__in=aaguids)}
    for passkey in passkeys:
        passkey.provider = providers.get(passkey.aaguid) if passkey.aaguid else None
    return passkeys


def passkey_list(*, user: User) -> list[Passkey]:
    return with_providers(list(passkeys_of(user=user)))


def credential_descriptors(*, user: User, on_chain: bool = False) -> list[CredentialDescriptor]:
    """The user's passkeys as WebAuthn allow/exclude entries; with `on_chain`, only those active
    on their smart account (the ones that can approve a chain operation)."""
    passkeys = passkeys_of(user=user)
    if on_chain:
        passkeys = passkeys.filter(onchain=Passkey.OnChain.ACTIVE)
    return [
        CredentialDescriptor(credential_id=bytes(p.credential_id), transports=list(p.transports))
        for p in passkeys
    ]


# The one read of every username-first sign-in options request, written out: building it with
# the ORM cost this process more than the rest of the request together. lower(username) is what
# the unique index on lower(username) serves (iexact's upper() would read every user).
_SIGN_IN_CANDIDATES = """
    SELECT passkey.user_id, passkey.credential_id, passkey.transports
    FROM passkeys_passkey passkey JOIN accounts_user person ON person.id = passkey.user_id
    WHERE lower(person.username) = lower(%s) AND person.is_active
    ORDER BY passkey.created_at, passkey.id
"""


def sign_in_candidates(*, username: str) -> tuple[int | None, list[CredentialDescriptor]]:
    """The active user named `username` (any case) and their passkeys, in one query when they
    have passkeys (everyone who signed up does)."""
    with connection.cursor() as cursor:
        cursor.execute(_SIGN_IN_CANDIDATES, [username])
        rows = cursor.fetchall()
    if rows:
        return rows[0][0], [
            CredentialDescriptor(
                credential_id=bytes(credential_id),
                # JSON text, as Django has every backend return it
                transports=list(json.loads(transports)),
            )
            for _, credential_id, transports in rows
        ]
    user_id = (
        User.objects.alias(lower_username=Lower("username"))
        .filter(lower_username=Lower(Value(username)), is_active=True)
        .values_list("pk", flat=True)
        .first()
    )
    return user_id, []


def _model_columns(model: type[Model], alias: str) -> tuple[list[str], list[str], list[Any]]:
    """A model's columns for a hand-written SELECT under `alias`: the SQL, the attribute names
    and each value's converters, as the ORM applies them (for the backend in use)."""
    sql, names, converters = [], [], []
    for field in model._meta.concrete_fields:
        column = field.get_col(alias)
        sql.append(f"{alias}.{connection.ops.quote_name(field.column)}")
        names.append(field.attname)
        converters.append(
            (
                [
                    *connection.ops.get_db_converters(column),
                    *cast(Any, field).get_db_converters(connection),
                ],
                column,
            )
        )
    return sql, names, converters


def _converted(db: Any, values: tuple[Any, ...], converters: list[Any]) -> list[Any]:
    converted = []
    for value, (functions, column) in zip(values, converters, strict=True):
        for function in functions:
            value = function(value, column, db)
        converted.append(value)
    return converted


@cache
def _passkey_and_owner_columns(
    vendor: str,
) -> tuple[str, list[str], list[str], list[Any], list[Any]]:
    passkey_sql, passkey_names, passkey_converters = _model_columns(Passkey, "passkey")
    user_sql, user_names, user_converters = _model_columns(User, "person")
    columns = ", ".join([*passkey_sql, *user_sql])  # from the models' metadata
    return columns, passkey_names, user_names, passkey_converters, user_converters


# The passkey and its owner, for passkey_with_owner_columns() (the credential id: one parameter).
PASSKEY_WITH_OWNER_JOIN = (
    "passkeys_passkey passkey JOIN accounts_user person ON person.id = passkey.user_id"
)
PASSKEY_WITH_OWNER_MATCH = "passkey.credential_id = %s"


def passkey_with_owner_columns() -> str:
    """The columns that passkey_from_row reads, under PASSKEY_WITH_OWNER_JOIN's names."""
    return _passkey_and_owner_columns(connection.vendor)[0]


def passkey_from_row(row: tuple[Any, ...]) -> Passkey | None:
    """The passkey, its `user` loaded, from passkey_with_owner_columns' values (None when they
    are all NULL: an outer join that found no passkey)."""
    if row[0] is None:  # the passkey's id
        return None
    db = default_database()
    _, passkey_names, user_names, passkey_converters, user_converters = _passkey_and_owner_columns(
        db.vendor
    )
    split = len(passkey_names)
    passkey = Passkey.from_db(
        db.alias, passkey_names, _converted(db, row[:split], passkey_converters)
    )
    passkey.user = User.from_db(db.alias, user_names, _converted(db, row[split:], user_converters))
    return passkey


@cache
def _passkey_with_owner_sql(vendor: str) -> str:
    return (
        f"SELECT {passkey_with_owner_columns()} FROM {PASSKEY_WITH_OWNER_JOIN} "  # noqa: S608
        f"WHERE {PASSKEY_WITH_OWNER_MATCH}"
    )


def passkey_with_owner(*, credential_id: bytes) -> Passkey | None:
    """The passkey with this credential id, its `user` loaded: one row, read by one hand-written
    query (on every sign-in and approval, the ORM's building of this join cost more than the
    rest of the verify's reads and writes)."""
    with connection.cursor() as cursor:
        cursor.execute(_passkey_with_owner_sql(connection.vendor), [credential_id])
        row = cursor.fetchone()
    return None if row is None else passkey_from_row(row)


def owns_passkey(*, user: User, passkey_id: int) -> bool:
    return Passkey.objects.filter(user=user, pk=passkey_id).exists()


def account_resilience(*, user: User) -> dict[str, object]:
    """Is the account one lost device away from lockout?"""
    passkeys = list(passkeys_of(user=user))
    reasons = []
    if len(passkeys) <= 1:
        reasons.append(AT_RISK_SINGLE_PASSKEY)
    if not any(p.backup_eligible for p in passkeys):
        reasons.append(AT_RISK_NO_SYNCED_PASSKEY)
    facts: dict[str, Any] = {}
    warnings: list[str] = []
    notes: list[dict[str, str]] = []
    for _receiver, answer in resilience_facts.send(sender=Passkey, user=user):
        extra = cast(dict[str, Any], answer)
        facts.update(extra.get("facts", {}))
        warnings.extend(extra.get("warnings", []))
        notes.extend(extra.get("notes", []))
    return {
        "level": "at_risk" if reasons else "ok",
        "reasons": reasons,
        "warnings": warnings,
        "facts": facts,
        "notes": notes,
    }


def account_overview(*, user: User) -> dict[str, object]:
    """What /account and /account/passkeys show: passkeys, resilience, the smart account."""
    return {
        "passkeys": passkey_list(user=user),
        "resilience": account_resilience(user=user),
        "smart_account": smart_account_of(user=user),
        "explorer_url": settings.CHAIN_EXPLORER_URL.rstrip("/"),
    }
