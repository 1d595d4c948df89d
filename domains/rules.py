"""What an observation means: the findings of one signal against its approved baseline.

A finding is (kind, severity, value, summary); its value is normalised so that the same change
always has the same fingerprint (domain, signal, kind, value). Kinds and severities follow SEAL's
domain-security framework; see README, "Domain watch".
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from domains.models import Severity, Signal

CRITICAL_KINDS = (
    "registrar_changed",
    "registration_status_changed",
    "nameservers_changed",
    "dnssec_changed",
    "caa_changed",
    "tls_key_changed",
    "certificate_unknown",
    "content_changed",
    "related_origins_changed",
    "origin_unexpected",
)
HIGH_KINDS = ("address_changed", "hsts_missing", "key_burst")  # and expiry_near < 30 days
WARNING_KINDS = ("ttl_dropped", "check_stale")  # and expiry_near < 60 days
ALL_KINDS = (*CRITICAL_KINDS, *HIGH_KINDS, *WARNING_KINDS, "expiry_near")

# RFC 8056 / EPP status phrases as RDAP writes them.
LOCK_STATUSES = frozenset(
    {
        "client transfer prohibited",
        "server transfer prohibited",
        "client delete prohibited",
        "server delete prohibited",
        "client update prohibited",
        "server update prohibited",
    }
)
DANGER_STATUSES = frozenset(
    {
        "pending transfer",
        "server hold",
        "client hold",
        "redemption period",
        "pending delete",
        "pending restore",
        "inactive",
    }
)


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str
    value: Any
    summary: str


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def fingerprint(*, domain: str, signal: str, kind: str, value: Any) -> str:
    return digest([domain.lower(), signal, kind, value])


def _expiry(what: str, when: str, now: datetime) -> Finding | None:
    if not when:
        return None
    try:
        expires = datetime.fromisoformat(when.replace("Z", "+00:00"))
    except ValueError:
        return None
    left = expires - now
    for days, severity in ((30, Severity.HIGH), (60, Severity.WARNING)):
        if left < timedelta(days=days):
            return Finding(
                "expiry_near",
                severity,
                {"what": what, "under_days": days},
                f"The {what} expires on {expires:%Y-%m-%d} ({max(left.days, 0)} days left).",
            )
    return None


def _changed(
    kind: str, severity: str, new: Any, old: Any, label: str, show: Any = None
) -> list[Finding]:
    if new == old:
        return []
    shown = show if show is not None else new
    return [Finding(kind, severity, new, f"{label} changed: now {shown}, approved {old}.")]


def rdap(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    found: list[Finding] = []
    if expiry := _expiry("registration", value.get("expires_at", ""), now):
        found.append(expiry)
    if base is None:
        return found
    found += _changed(
        "registrar_changed",
        Severity.CRITICAL,
        value["registrar_iana_id"],
        base.get("registrar_iana_id"),
        "The registrar (IANA id)",
    )
    statuses, approved = set(value["statuses"]), set(base.get("statuses", []))
    removed_locks = sorted((approved & LOCK_STATUSES) - statuses)
    added_danger = sorted((statuses & DANGER_STATUSES) - approved)
    if removed_locks or added_danger:
        parts = []
        if removed_locks:
            parts.append("lock removed: " + ", ".join(removed_locks))
        if added_danger:
            parts.append("now: " + ", ".join(added_danger))
        found.append(
            Finding(
                "registration_status_changed",
                Severity.CRITICAL,
                {"removed_locks": removed_locks, "added": added_danger},
                "Registration status changed (" + "; ".join(parts) + ").",
            )
        )
    return found


def dns(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    if base is None:
        return []
    records, approved = value["records"], base.get("records", {})
    found: list[Finding] = []
    ns_changed = records["NS"] != approved.get("NS")
    found += _changed(
        "nameservers_changed", Severity.CRITICAL, records["NS"], approved.get("NS"), "NS"
    )
    addresses = sorted(records["A"] + records["AAAA"])
    approved_addresses = sorted(approved.get("A", []) + approved.get("AAAA", []))
    if not ns_changed:
        found += _changed("address_changed", Severity.HIGH, addresses, approved_addresses, "A/AAAA")
    dnssec_now = {"ds": records["DS"], "dnskey": records["DNSKEY"], "status": value["dnssec"]}
    dnssec_then = {
        "ds": approved.get("DS", []),
        "dnskey": approved.get("DNSKEY", []),
        "status": base.get("dnssec"),
    }
    found += _changed(
        "dnssec_changed",
        Severity.CRITICAL,
        dnssec_now,
        dnssec_then,
        "DNSSEC",
        show=f"status {value['dnssec']}, {len(records['DS'])} DS, {len(records['DNSKEY'])} DNSKEY",
    )
    found += _changed("caa_changed", Severity.CRITICAL, records["CAA"], approved.get("CAA"), "CAA")
    dropped = {
        rdtype: ttl
        for rdtype, ttl in value.get("ttl", {}).items()
        if rdtype in ("NS", "A", "AAAA")
        and (approved_ttl := base.get("ttl", {}).get(rdtype))
        and ttl * 2 <= approved_ttl
    }
    if dropped:
        found.append(
            Finding(
                "ttl_dropped",
                Severity.WARNING,
                dropped,
                "TTLs dropped to half or less of the approved ones: "
                + ", ".join(f"{k} {v}s" for k, v in sorted(dropped.items()))
                + " (a move being prepared?).",
            )
        )
    return found


def _spkis(value: dict[str, Any]) -> list[str]:
    return sorted(
        {c["spki_sha256"] for c in value.get("certificates", {}).values() if "spki_sha256" in c}
    )


def tls(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    found: list[Finding] = []
    certificates = value["certificates"]
    for address, certificate in sorted(certificates.items()):
        if certificate.get("verified") is False:
            found.append(
                Finding(
                    "certificate_unknown",
                    Severity.CRITICAL,
                    certificate["spki_sha256"],
                    f"{address} presents a certificate that does not verify "
                    f"({certificate['error']}), issuer {certificate['issuer']}.",
                )
            )
    soonest = min((c["not_after"] for c in certificates.values() if "not_after" in c), default="")
    if expiry := _expiry("certificate", soonest, now):
        found.append(expiry)
    if base is not None:
        found += _changed(
            "tls_key_changed", Severity.CRITICAL, _spkis(value), _spkis(base), "The TLS key (SPKI)"
        )
    return found


def ct(
    value: dict[str, Any],
    base: dict[str, Any] | None,
    now: datetime,
    *,
    known_spkis: set[str] | None = None,
) -> list[Finding]:
    if base is None:
        return []
    known = {c["pubkey_sha256"] for c in base.get("certificates", [])} | (known_spkis or set())
    found = []
    for certificate in value["certificates"]:
        if certificate["pubkey_sha256"] not in known:
            found.append(
                Finding(
                    "certificate_unknown",
                    Severity.CRITICAL,
                    certificate["pubkey_sha256"],
                    f"A certificate for {', '.join(certificate['dns_names'][:3])} with an unknown "
                    f"key was logged by {certificate['issuer'] or 'an unknown issuer'} "
                    f"(CT id {certificate['id']}).",
                )
            )
    return found


def content(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    found = []
    changed: dict[str, Any] = {}
    if base is not None:
        approved = base.get("hashes", {})
        for path in sorted(set(value["hashes"]) | set(approved)):
            if value["hashes"].get(path) != approved.get(path):
                changed[path] = value["hashes"].get(path, [])
    for path in value.get("sri_mismatch", []):
        changed.setdefault(path, value["hashes"].get(path, []))
    if changed:
        found.append(
            Finding(
                "content_changed",
                Severity.CRITICAL,
                changed,
                "Served content differs from what was approved or shipped: "
                + ", ".join(sorted(changed))
                + ".",
            )
        )
    return found


def wellknown(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    if base is None:
        return []
    return _changed(
        "related_origins_changed",
        Severity.CRITICAL,
        value["origins"],
        base.get("origins"),
        "/.well-known/webauthn origins",
    )


def hsts(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    if value["max_age"] > 0:
        return []
    return [
        Finding(
            "hsts_missing",
            Severity.HIGH,
            value["header"],
            "No Strict-Transport-Security with a positive max-age"
            + (f" (got {value['header']!r})." if value["header"] else "."),
        )
    ]


def onchain(value: dict[str, Any], base: dict[str, Any] | None, now: datetime) -> list[Finding]:
    found = [
        Finding(
            "origin_unexpected",
            Severity.CRITICAL,
            origin,
            f"Passkeys for {origin}, which is not one of the portal's origins, are active on "
            f"{len(accounts)} account(s): {', '.join(accounts[:3])}.",
        )
        for origin, accounts in sorted(value["unexpected_origins"].items())
    ]
    if value["recent_additions"] >= settings.DOMAINS_KEY_BURST and value["recent_accounts"] >= 2:
        found.append(
            Finding(
                "key_burst",
                Severity.HIGH,
                "burst",
                f"{value['recent_additions']} passkeys added across {value['recent_accounts']} "
                f"accounts in the last {settings.DOMAINS_KEY_BURST_SECONDS} s.",
            )
        )
    return found


RULES = {
    Signal.RDAP: rdap,
    Signal.DNS: dns,
    Signal.TLS: tls,
    Signal.CONTENT: content,
    Signal.WELLKNOWN: wellknown,
    Signal.HSTS: hsts,
    Signal.ONCHAIN: onchain,
}


def severity_rank(severity: str) -> int:
    return {Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}.get(severity, 0)  # type: ignore[call-overload]
