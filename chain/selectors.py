"""Queries of the chain app."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TypeVar

from django.conf import settings

from chain.models import ChainEvent, Deployment, WatchedAccount

T = TypeVar("T")
# Values per SQL IN (...) list (SQLite's limit is 32766 variables; stay far below).
CHUNK = 500
KEY_EVENTS = ("PasskeyCreated", "PasskeyRemoved")


def chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for index in range(0, len(items), CHUNK):
        yield items[index : index + CHUNK]


def deployment_addresses(*, chain_id: int | None = None) -> dict[str, str]:
    """Contract name → address recorded for the chain (the configured CHAIN_ID by default)."""
    rows = Deployment.objects.filter(chain_id=settings.CHAIN_ID if chain_id is None else chain_id)
    return {row.name: row.address for row in rows}


def deployment_address(name: str, *, chain_id: int | None = None) -> str:
    """The recorded address of contract `name`; Deployment.DoesNotExist when not deployed."""
    row = Deployment.objects.get(
        chain_id=settings.CHAIN_ID if chain_id is None else chain_id, name=name
    )
    return row.address


def deployment_times(*, chain_id: int, addresses: Sequence[str]) -> dict[str, datetime | None]:
    """Account address → the block time of its earliest indexed AccountDeployed event, for the
    accounts that have one."""
    deployed: dict[str, datetime | None] = {}
    for some in chunks(addresses):
        for address, block_timestamp in (
            ChainEvent.objects.filter(chain_id=chain_id, name="AccountDeployed", account__in=some)
            .order_by("-block_number", "-log_index")
            .values_list("account", "block_timestamp")
        ):
            deployed[address] = block_timestamp  # the earliest wins
    return deployed


def latest_key_events(
    *, chain_id: int, keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """(account address, credential id hex) → the name of the latest indexed PasskeyCreated or
    PasskeyRemoved of that account and credential, any origin; pairs with none are left out."""
    pairs = sorted(set(keys))
    latest: dict[tuple[str, str], str] = {}
    for some in chunks(pairs):
        events = (
            ChainEvent.objects.filter(
                chain_id=chain_id,
                name__in=KEY_EVENTS,
                account__in={account for account, _ in some},
                credential_id__in={credential_id for _, credential_id in some},
            )
            .order_by("block_number", "log_index")
            .values_list("account", "credential_id", "name")
        )
        for account, credential_id, name in events:
            latest[(account, credential_id)] = name
    return latest


def account_events(
    *, chain_id: int, accounts: Iterable[str], names: Sequence[str]
) -> list[ChainEvent]:
    """The indexed events named `names` about `accounts`, oldest first (block, log index)."""
    wanted = sorted(set(accounts))
    found: list[ChainEvent] = []
    for some in chunks(wanted):
        found.extend(ChainEvent.objects.filter(chain_id=chain_id, account__in=some, name__in=names))
    return sorted(found, key=lambda event: (event.block_number, event.log_index))


def latest_keyed_events(
    *, chain_id: int, names: Sequence[str], keys: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], ChainEvent]:
    """(account address, key hex) → the latest indexed event among `names` of that account and
    key (ChainEvent.credential_id: a credential id, a session hash); pairs with none left out."""
    pairs = sorted(set(keys))
    latest: dict[tuple[str, str], ChainEvent] = {}
    for some in chunks(pairs):
        events = ChainEvent.objects.filter(
            chain_id=chain_id,
            name__in=list(names),
            account__in={account for account, _ in some},
            credential_id__in={key for _, key in some},
        ).order_by("block_number", "log_index")
        for event in events:
            latest[(event.account, event.credential_id)] = event
    return latest


def watched_among(*, chain_id: int, addresses: Iterable[str]) -> set[str]:
    """The addresses (EIP-55) among `addresses` that are the portal's accounts on the chain."""
    wanted = sorted(set(addresses))
    watched: set[str] = set()
    for some in chunks(wanted):
        watched.update(
            WatchedAccount.objects.filter(chain_id=chain_id, address__in=some).values_list(
                "address", flat=True
            )
        )
    return watched
