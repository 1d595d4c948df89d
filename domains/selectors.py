"""Reads of the domain watch (the console, the API, the onchain probe)."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from chain.models import ChainEvent
from domains.models import (
    Alert,
    Baseline,
    Check,
    Incident,
    Lockdown,
    Observation,
    Signal,
    WatchedDomain,
)


def enabled_signals() -> list[str]:
    return [s for s in Signal.values if s in settings.DOMAINS_SIGNALS]


def lockdown_state() -> Lockdown:
    return Lockdown.objects.filter(pk=1).first() or Lockdown(pk=1)


def lockdown_enabled() -> bool:
    return Lockdown.objects.filter(pk=1, enabled=True).exists()


def watched_domains() -> QuerySet[WatchedDomain]:
    return WatchedDomain.objects.filter(active=True).order_by("name")


def domain_named(name: str) -> WatchedDomain | None:
    return WatchedDomain.objects.filter(name=name.lower().rstrip("."), active=True).first()


def latest_observation(check: Check) -> Observation | None:
    return check.observations.order_by("-observed_at", "-id").first()


def approved_baseline(check: Check) -> Baseline | None:
    return check.baselines.filter(status=Baseline.Status.APPROVED).first()


def proposed_baseline(check: Check) -> Baseline | None:
    return check.baselines.filter(status=Baseline.Status.PROPOSED).first()


def effective_state(check: Check, *, now: datetime | None = None) -> str:
    """The stored state, or `stale` when the check has not run for three periods."""
    now = now or timezone.now()
    period = timedelta(seconds=settings.DOMAINS_CHECK_SECONDS)
    if check.last_run_at is not None and check.last_run_at < now - 3 * period:
        return Check.State.STALE
    return check.state


def domain_detail(domain: WatchedDomain) -> list[dict[str, Any]]:
    """Per signal: state, latest observation, approved and proposed baselines."""
    checks = {c.signal: c for c in domain.checks.all()}
    result = []
    for signal in enabled_signals():
        check = checks.get(signal)
        latest = latest_observation(check) if check else None
        approved = approved_baseline(check) if check else None
        proposed = proposed_baseline(check) if check else None
        result.append(
            {
                "signal": signal,
                "label": Signal(signal).label,
                "state": effective_state(check) if check else Check.State.UNKNOWN,
                "summary": check.summary if check else "not run yet",
                "last_run_at": check.last_run_at if check else None,
                "check": check,
                "latest": latest,
                "approved": approved,
                "proposed": proposed,
            }
        )
    return result


def alerts(*, status: str | None = None, domain: WatchedDomain | None = None) -> QuerySet[Alert]:
    found = Alert.objects.select_related("domain").order_by("-last_seen", "-id")
    if status:
        found = found.filter(status=status)
    if domain is not None:
        found = found.filter(domain=domain)
    return found


def open_incidents() -> QuerySet[Incident]:
    return (
        Incident.objects.exclude(status=Incident.Status.RESOLVED)
        .select_related("domain")
        .order_by("-opened_at")
    )


def history(check: Check, *, limit: int = 50) -> list[dict[str, Any]]:
    """The check's observations, newest first, each with what changed since the one before."""
    observations = list(check.observations.order_by("-observed_at", "-id")[: limit + 1])
    rows = []
    for index, observation in enumerate(observations[:limit]):
        older = observations[index + 1] if index + 1 < len(observations) else None
        rows.append(
            {
                "observation": observation,
                "changes": diff(older.value if older else {}, observation.value),
            }
        )
    return rows


def diff(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """Leaf-level differences between two JSON values: [{path, old, new}]."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes = []
        for key in sorted(set(old) | set(new), key=str):
            changes += diff(old.get(key), new.get(key), f"{path}.{key}" if path else str(key))
        return changes
    if old == new:
        return []
    return [{"path": path or "(value)", "old": old, "new": new}]


def certificates(domain: WatchedDomain) -> dict[str, Any]:
    """Live certificates (TLS check) next to the ones CT logged, and which keys are approved."""
    checks = {c.signal: c for c in domain.checks.all()}
    live: dict[str, Any] = {}
    logged: list[dict[str, Any]] = []
    approved_keys: set[str] = set()
    if tls := checks.get(Signal.TLS):
        if latest := latest_observation(tls):
            live = latest.value.get("certificates", {})
        if base := approved_baseline(tls):
            approved_keys |= {
                c["spki_sha256"]
                for c in base.value.get("certificates", {}).values()
                if "spki_sha256" in c
            }
    if ct := checks.get(Signal.CT):
        if latest := latest_observation(ct):
            logged = latest.value.get("certificates", [])
        if base := approved_baseline(ct):
            approved_keys |= {c["pubkey_sha256"] for c in base.value.get("certificates", [])}
    live_keys = {c.get("spki_sha256") for c in live.values()}
    return {
        "live": live,
        "logged": [
            {
                **c,
                "approved": c["pubkey_sha256"] in approved_keys,
                "live": c["pubkey_sha256"] in live_keys,
            }
            for c in logged
        ],
        "approved_keys": sorted(approved_keys),
    }


def registration(domain: WatchedDomain, *, now: datetime | None = None) -> dict[str, Any] | None:
    check = domain.checks.filter(signal=Signal.RDAP).first()
    latest = latest_observation(check) if check else None
    if latest is None or latest.error:
        return None
    value = dict(latest.value)
    expires = value.get("expires_at", "")
    try:
        expires_at = datetime.fromisoformat(expires.replace("Z", "+00:00")) if expires else None
    except ValueError:
        expires_at = None
    value["expires_at_parsed"] = expires_at
    value["days_left"] = (expires_at - (now or timezone.now())).days if expires_at else None
    return value


# --- on chain (read models of the indexer) -----------------------------------------------------


def _passkey_events() -> QuerySet[ChainEvent]:
    return ChainEvent.objects.filter(
        chain_id=settings.CHAIN_ID, name__in=("PasskeyCreated", "PasskeyRemoved")
    ).order_by("block_number", "log_index")


def active_keys_by_origin() -> dict[str, set[str]]:
    """{origin: accounts holding a passkey registered for it}, from PasskeyCreated/Removed."""
    latest: dict[tuple[str, str, str], str] = {}
    for event in _passkey_events().only("name", "account", "args", "credential_id"):
        origin = str(event.args.get("domain", ""))
        latest[(event.account, origin, event.credential_id)] = event.name
    result: dict[str, set[str]] = defaultdict(set)
    for (account, origin, _credential), name in latest.items():
        if name == "PasskeyCreated":
            result[origin].add(account)
    return dict(result)


def recent_key_additions(*, since: datetime) -> dict[str, int]:
    recent = ChainEvent.objects.filter(chain_id=settings.CHAIN_ID, name="PasskeyCreated").filter(
        Q(block_timestamp__gte=since) | Q(block_timestamp__isnull=True, indexed_at__gte=since)
    )
    return {
        "count": recent.count(),
        "accounts": recent.values("account").distinct().count(),
    }


def migration_plan(*, new_origin: str) -> dict[str, Any]:
    """Accounts whose active keys are registered for the current origin, the new one, or both;
    and the related-origins file the RP ID must serve for the new origin to use the passkeys."""
    old_origin = settings.PORTAL_ORIGINS[0]
    keys = active_keys_by_origin()
    old, new = keys.get(old_origin, set()), keys.get(new_origin, set()) if new_origin else set()
    related = sorted({*settings.PORTAL_RELATED_ORIGINS, *([new_origin] if new_origin else [])})
    return {
        "old_origin": old_origin,
        "new_origin": new_origin,
        "old_only": len(old - new),
        "both": len(old & new),
        "new_only": len(new - old),
        "related_origins_file": {"origins": related},
        "rp_id": settings.PORTAL_RP_ID,
    }
