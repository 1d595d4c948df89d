"""What the portal pays on chain, bounded: gas reserved per rolling hour and day for the relayer
(its own transactions: account deployments) and for the paymaster (sponsored user operations).

Every operation reserves gas when it is created (`reserved_gas`: its user operation's gas limits,
or RELAYER_CALL_GAS for a relayer call); an operation that expired unsigned, or failed before it
was sent, costs nothing. A creation that would go over a budget is refused before anything is
written. Reservations are limits, not what was paid: the budgets are conservative.

A payer's check and the row that records the reservation are one step (`reserving`): on
PostgreSQL, creations for one payer take an advisory lock held until their transaction commits,
so two requests near the limit cannot both see room for themselves."""

from __future__ import annotations

import contextlib
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.core.cache import cache as django_cache
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from web3 import Web3

from chain.client import ChainUnavailable, call_chain, connect, entry_point, relayer_account
from chain.models import ChainOperation, Deployment
from chain.selectors import deployment_addresses
from portal.errors import PortalError

logger = logging.getLogger(__name__)

RELAYER, PAYMASTER = "relayer", "paymaster"
# Gas reserved for one relayer call (an account deployment uses about 420k, its limit is set by
# simulation); the portal's own user operations reserve their gas limits.
RELAYER_CALL_GAS = 1_000_000
WINDOWS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}
# Operators are told once a budget is this much used.
WARN_AT = 0.8
HEALTH_CACHE_SECONDS = 30


@dataclass(frozen=True)
class Budget:
    payer: str
    window: str
    limit: int
    used: int

    @property
    def left(self) -> int:
        return max(0, self.limit - self.used)


def _limit(payer: str, window: str) -> int:
    return int(getattr(settings, f"CHAIN_{payer.upper()}_GAS_PER_{window.upper()}"))


def _used(payer: str, since: Any) -> int:
    spent = (
        ChainOperation.objects.filter(chain_id=settings.CHAIN_ID, created_at__gte=since)
        .filter(user_operation__isnull=payer == RELAYER)
        .exclude(status=ChainOperation.Status.EXPIRED)
        .exclude(Q(status=ChainOperation.Status.FAILED) & Q(tx_hash=""))
        .aggregate(total=Sum("reserved_gas"))["total"]
    )
    return int(spent or 0)


def budgets() -> list[Budget]:
    now = timezone.now()
    return [
        Budget(payer, window, _limit(payer, window), _used(payer, now - length))
        for payer in (RELAYER, PAYMASTER)
        for window, length in WINDOWS.items()
    ]


@contextlib.contextmanager
def reserving(*, payer: str, gas: int) -> Iterator[None]:
    """Refuse (429 `budget_exhausted`) what would overrun one of `payer`'s budgets; otherwise let
    the caller write the operation that reserves `gas`, other creations for `payer` waiting until
    it commits."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(f"budget:{payer}".encode())]
                )
        ensure_within_budget(payer=payer, gas=gas)
        yield


def ensure_within_budget(*, payer: str, gas: int) -> None:
    """Refuse (429 `budget_exhausted`) an operation whose reserved gas would overrun one of
    `payer`'s budgets."""
    for budget in budgets():
        if budget.payer == payer and budget.used + gas > budget.limit:
            logger.warning(
                "%s budget per %s exhausted: %d of %d gas reserved",
                payer,
                budget.window,
                budget.used,
                budget.limit,
            )
            raise PortalError(
                "budget_exhausted",
                "The portal has reached what it pays on chain for now: try again later.",
                status=429,
            )


# --- balances: /healthz and operators' emails -------------------------------------------------


@cache
def _health_node(rpc_url: str) -> Web3:
    return connect(rpc_url, timeout=2)


def balances() -> dict[str, int] | None:
    """The relayer's balance and the paymaster's EntryPoint deposit (wei); None when the portal's
    contracts are not recorded on CHAIN_ID. ChainUnavailable when the chain does not answer."""
    addresses = deployment_addresses()
    if "SponsorPaymaster" not in addresses or "EntryPoint" not in addresses:
        return None
    w3 = _health_node(settings.CHAIN_RPC_URL)
    relayer = relayer_account().address
    deposit = entry_point(w3).functions.balanceOf(addresses["SponsorPaymaster"])
    return {
        "relayer_balance_wei": int(call_chain(w3.eth.get_balance, relayer)),
        "paymaster_deposit_wei": int(call_chain(deposit.call)),
    }


def _low(found: dict[str, int]) -> list[str]:
    low = []
    if found["relayer_balance_wei"] < settings.CHAIN_RELAYER_MIN_BALANCE_WEI:
        low.append("relayer_balance_wei")
    if found["paymaster_deposit_wei"] < settings.CHAIN_PAYMASTER_MIN_DEPOSIT_WEI:
        low.append("paymaster_deposit_wei")
    return low


def chain_health() -> dict[str, Any] | None:
    """The chain's part of /healthz: `ok`, `degraded` (a balance below its threshold, or the
    chain not answering); None (not shown) when the contracts are not deployed. Cached briefly."""
    if not Deployment.objects.filter(chain_id=settings.CHAIN_ID).exists():
        return None
    key = f"health:chain:{settings.CHAIN_ID}"
    try:
        cached = django_cache.get(key)
    except Exception:  # the cache's backend is down: look now
        cached = None
    if cached is not None:
        return dict(cached)
    try:
        found = balances()
    except (ChainUnavailable, ValueError) as exc:
        logger.warning("health: chain unavailable: %s", getattr(exc, "detail", exc))
        return {"status": "degraded", "chain": "unavailable"}
    if found is None:
        return None
    result: dict[str, Any] = {
        "status": "degraded" if _low(found) else "ok",
        **{name: str(value) for name, value in found.items()},
    }
    with contextlib.suppress(Exception):  # not cached: computed again next time
        django_cache.set(key, result, HEALTH_CACHE_SECONDS)
    return result


def _first_today(condition: str) -> bool:
    """True the first time `condition` is seen today (True too when the cache is down)."""
    key = f"budget-alert:{timezone.now().date().isoformat()}:{condition.replace(' ', '_')}"
    try:
        return bool(django_cache.add(key, 1, 86400))
    except Exception:
        return True


def check_budgets() -> list[str]:
    """What beat runs every CHAIN_BUDGET_CHECK_SECONDS: email the operators once a day per
    condition when a budget is WARN_AT used or a balance is low. Returns what it found."""
    found_conditions = [
        (
            f"{budget.payer} budget per {budget.window}",
            f"{budget.used:,} of {budget.limit:,} gas reserved",
        )
        for budget in budgets()
        if budget.limit and budget.used >= WARN_AT * budget.limit
    ]
    try:
        found = balances()
    except ChainUnavailable as exc:
        logger.warning("budgets: chain unavailable: %s", exc.detail)
        found = None
    if found is not None:
        found_conditions += [
            (name, f"{found[name]:,} wei, below its threshold") for name in _low(found)
        ]
    for condition, facts in found_conditions:
        logger.warning("budgets: %s: %s", condition, facts)
        if _first_today(condition) and settings.PORTAL_OPERATOR_EMAILS:
            send_mail(
                subject=f"[Passkey Portal] {condition} is running low",
                message=(
                    f"{condition}: {facts} (chain {settings.CHAIN_ID}).\n\nRaise the budget in "
                    "the settings, or fund the relayer / top the paymaster deposit up "
                    "(manage.py deploycontracts tops it up to CHAIN_PAYMASTER_DEPOSIT_WEI)."
                ),
                from_email=None,
                recipient_list=list(settings.PORTAL_OPERATOR_EMAILS),
                fail_silently=True,
            )
    return [condition for condition, _ in found_conditions]
