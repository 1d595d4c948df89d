"""onchain: from the indexer's events, a passkey registered on a portal account for an origin the
portal does not serve, and bursts of key additions across accounts."""

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from chain.models import ChainEvent
from domains.models import Alert, WatchedDomain
from tests.domains.conftest import raised_once_then_closed
from tests.domains.world import World

pytestmark = pytest.mark.django_db

_log_index = itertools.count()


def key_event(
    settings: Any, *, name: str, account: str, origin: str, credential: str, block: int = 10
) -> ChainEvent:
    """A WebAuthnValidator log as the indexer stores it."""
    return ChainEvent.objects.create(
        chain_id=settings.CHAIN_ID,
        block_number=block,
        block_hash="0x" + f"{block:064x}",
        block_timestamp=datetime.now(tz=UTC),
        tx_hash="0x" + "ab" * 32,
        log_index=next(_log_index),
        contract="WebAuthnValidator",
        address="0x" + "11" * 20,
        name=name,
        args={"keyOwner": account, "domain": origin, "credentialId": credential},
        account=account,
        credential_id=credential,
    )


ALICE = "0x" + "a1" * 20


def test_a_key_for_a_foreign_origin_is_critical_until_removed(
    world: World, baselined: WatchedDomain, watch: Any, settings: Any
) -> None:
    portal_origin = settings.PORTAL_ORIGINS[0]
    key_event(
        settings, name="PasskeyCreated", account=ALICE, origin=portal_origin, credential="0x01"
    )

    alert = raised_once_then_closed(
        watch=watch,
        signal="onchain",
        kind="origin_unexpected",
        change=lambda: key_event(
            settings,
            name="PasskeyCreated",
            account=ALICE,
            origin="https://evil.test",
            credential="0x02",
            block=11,
        ),
        revert=lambda: key_event(
            settings,
            name="PasskeyRemoved",
            account=ALICE,
            origin="https://evil.test",
            credential="0x02",
            block=12,
        ),
    )
    assert alert.value == {"value": "https://evil.test"}
    assert ALICE in alert.summary


def test_a_related_origin_is_expected(
    world: World, baselined: WatchedDomain, watch: Any, settings: Any
) -> None:
    settings.PORTAL_RELATED_ORIGINS = ["https://app.example.test"]
    key_event(
        settings,
        name="PasskeyCreated",
        account=ALICE,
        origin="https://app.example.test",
        credential="0x03",
    )
    watch(["onchain"])
    assert Alert.objects.count() == 0


def test_a_burst_of_key_additions_across_accounts_is_high(
    world: World, baselined: WatchedDomain, watch: Any, settings: Any
) -> None:
    settings.DOMAINS_KEY_BURST = 4
    origin = settings.PORTAL_ORIGINS[0]
    for n in range(4):
        key_event(
            settings,
            name="PasskeyCreated",
            account=f"0x{n:040x}",
            origin=origin,
            credential=f"0x1{n}",
        )

    def quiet_again() -> None:
        settings.DOMAINS_KEY_BURST_SECONDS = 0

    alert = raised_once_then_closed(
        watch=watch,
        signal="onchain",
        kind="key_burst",
        change=lambda: None,
        revert=quiet_again,
        severity="high",
    )
    assert "4 passkeys added across 4 accounts" in alert.summary
