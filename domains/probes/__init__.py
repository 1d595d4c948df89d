"""One probe per signal: `observe(domain, context) -> value` (JSON). Probes only look; comparing
with the baseline is domains.rules, storing is domains.services."""

import hashlib
import html.parser
import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dns.dnssec
import dns.name
import dns.rdatatype
import requests
from django.conf import settings

from domains.models import Signal
from domains.probes import net
from domains.probes.net import ProbeError


@dataclass
class ProbeContext:
    now: datetime
    previous: dict[str, Any] | None = None  # the check's latest value (CT accumulates)
    _addresses: list[str] | None = field(default=None, repr=False)

    def addresses(self, domain: str) -> list[str]:
        if self._addresses is None:
            self._addresses = net.addresses_of(domain)
            if not self._addresses:
                raise ProbeError(f"no A/AAAA address for {domain} at the watched resolvers")
        return self._addresses


# --- rdap ------------------------------------------------------------------------------------

_bootstrap_cache: dict[str, tuple[datetime, dict[str, Any]]] = {}


def _get_json(url: str) -> Any:
    try:
        response = requests.get(
            url,
            timeout=net.timeout(),
            headers={"Accept": "application/rdap+json, application/json"},
        )
    except requests.RequestException as exc:
        raise ProbeError(f"{url}: {exc}") from exc
    if response.status_code != 200:
        raise ProbeError(f"{url}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError as exc:
        raise ProbeError(f"{url}: not JSON") from exc


def rdap_base_url(domain: str, *, now: datetime) -> str:
    """The RDAP service of the domain's TLD, from IANA's bootstrap file (kept for a day)."""
    url = settings.DOMAINS_RDAP_BOOTSTRAP_URL
    cached = _bootstrap_cache.get(url)
    if cached is None or cached[0] < now - timedelta(days=1) or cached[0] > now:
        cached = (now, _get_json(url))
        _bootstrap_cache[url] = cached
    labels = domain.lower().rstrip(".").split(".")
    best: tuple[int, str] | None = None
    for entry in cached[1].get("services", []):
        suffixes, urls = entry[0], entry[1]
        for suffix in suffixes:
            suffix_labels = suffix.lower().split(".")
            if labels[-len(suffix_labels) :] == suffix_labels and urls:
                https = [u for u in urls if u.startswith("https://")]
                chosen = (https or urls)[0]
                if best is None or len(suffix_labels) > best[0]:
                    best = (len(suffix_labels), chosen)
    if best is None:
        raise ProbeError(f"no RDAP service for {domain} in the bootstrap file")
    return best[1] if best[1].endswith("/") else best[1] + "/"


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _registrar(data: dict[str, Any]) -> tuple[str, str]:
    for entity in _list(data.get("entities")):
        if not isinstance(entity, dict) or "registrar" not in _list(entity.get("roles")):
            continue
        iana_id = ""
        for public_id in _list(entity.get("publicIds")):
            if isinstance(public_id, dict) and "iana" in str(public_id.get("type", "")).lower():
                iana_id = str(public_id.get("identifier", ""))
        name = entity.get("handle", "")
        vcard = entity.get("vcardArray")
        if isinstance(vcard, list) and len(vcard) == 2:
            for item in vcard[1]:
                if isinstance(item, list) and item and item[0] == "fn":
                    name = str(item[3])
        return iana_id, str(name)
    return "", ""


def observe_rdap(domain: str, context: ProbeContext) -> dict[str, Any]:
    data = _get_json(rdap_base_url(domain, now=context.now) + "domain/" + domain)
    if not isinstance(data, dict):
        raise ProbeError("RDAP answer is not an object")
    events = {
        str(e.get("eventAction", "")).lower(): str(e.get("eventDate", ""))
        for e in _list(data.get("events"))
        if isinstance(e, dict)
    }
    iana_id, registrar_name = _registrar(data)
    secure = data.get("secureDNS")
    secure = secure if isinstance(secure, dict) else {}
    return {
        "registrar_iana_id": iana_id,
        "registrar": registrar_name,
        "statuses": sorted({str(s).lower() for s in _list(data.get("status"))}),
        "expires_at": events.get("expiration", ""),
        "registered_at": events.get("registration", ""),
        "last_changed": events.get("last changed", ""),
        "nameservers": sorted(
            str(ns.get("ldhName", "")).lower().rstrip(".")
            for ns in _list(data.get("nameservers"))
            if isinstance(ns, dict)
        ),
        "dnssec_delegation": bool(secure.get("delegationSigned", False)),
    }


# --- dns -------------------------------------------------------------------------------------

DNS_TYPES = ("NS", "A", "AAAA", "CAA", "DS", "DNSKEY")


def _dnssec_status(domain: str, resolver: tuple[str, int]) -> str:
    """'unsigned', 'valid', or 'invalid: why' (DNSKEY signed by itself, and matching a DS)."""
    ds = net.ask(name=domain, rdtype="DS", resolver=resolver)
    keys = net.ask(name=domain, rdtype="DNSKEY", resolver=resolver, dnssec=True)
    if not ds.records and not keys.records:
        return "unsigned"
    if not ds.records:
        return "invalid: DNSKEY without a DS at the parent"
    if keys.rrset is None:
        return "invalid: DS without a DNSKEY"
    if not keys.signatures:
        return "invalid: DNSKEY not signed"
    name = dns.name.from_text(domain)
    try:
        dns.dnssec.validate(keys.rrset, keys.signatures[0], {name: keys.rrset})
    except dns.dnssec.ValidationFailure as exc:
        return f"invalid: {exc}"
    ds_set = {record.lower() for record in ds.records}
    for key in keys.rrset:
        for algorithm in ("SHA256", "SHA384", "SHA1"):
            if dns.dnssec.make_ds(name, key, algorithm).to_text().lower() in ds_set:
                return "valid"
    return "invalid: no DNSKEY matches the DS"


def observe_dns(domain: str, context: ProbeContext) -> dict[str, Any]:
    per_resolver: dict[str, Any] = {}
    merged: dict[str, set[str]] = {rdtype: set() for rdtype in DNS_TYPES}
    ttls: dict[str, int] = {}
    statuses = set()
    errors = []
    for resolver in net.resolvers():
        label = f"{resolver[0]}:{resolver[1]}"
        try:
            answers = {
                rdtype: net.ask(name=domain, rdtype=rdtype, resolver=resolver)
                for rdtype in DNS_TYPES
            }
            status = _dnssec_status(domain, resolver)
        except ProbeError as exc:
            errors.append(str(exc))
            per_resolver[label] = {"error": str(exc)}
            continue
        per_resolver[label] = {
            rdtype: {"records": answer.records, "ttl": answer.ttl}
            for rdtype, answer in answers.items()
        }
        per_resolver[label]["dnssec"] = status
        statuses.add(status)
        for rdtype, answer in answers.items():
            merged[rdtype].update(answer.records)
            if answer.ttl is not None:
                ttls[rdtype] = max(ttls.get(rdtype, 0), answer.ttl)
    if len(errors) == len(per_resolver):
        raise ProbeError("; ".join(errors))
    return {
        "records": {rdtype: sorted(values) for rdtype, values in merged.items()},
        "ttl": ttls,
        "dnssec": sorted(statuses)[0] if len(statuses) == 1 else "resolvers disagree",
        "resolvers": per_resolver,
    }


# --- tls -------------------------------------------------------------------------------------


def observe_tls(domain: str, context: ProbeContext) -> dict[str, Any]:
    certificates: dict[str, Any] = {}
    for address in context.addresses(domain):
        try:
            certificates[address] = net.leaf_certificate(address=address, domain=domain)
        except ProbeError as exc:
            certificates[address] = {"error": str(exc)}
    if all("error" in c and "spki_sha256" not in c for c in certificates.values()):
        raise ProbeError("; ".join(c["error"] for c in certificates.values()))
    return {"certificates": certificates}


# --- ct --------------------------------------------------------------------------------------


def _issuer_name(issuer: Any) -> str:
    if isinstance(issuer, dict):
        return str(issuer.get("friendly_name") or issuer.get("name") or "")
    return str(issuer or "")


def observe_ct(domain: str, context: ProbeContext) -> dict[str, Any]:
    """Certificates logged for the domain since the last seen issuance (Cert Spotter's API),
    accumulated; expired ones are dropped."""
    previous = context.previous or {}
    known: dict[str, Any] = {c["id"]: c for c in previous.get("certificates", [])}
    after = previous.get("after", "")
    base = settings.DOMAINS_CT_URL.rstrip("/")
    headers = {"Accept": "application/json"}
    if settings.DOMAINS_CT_API_KEY:
        headers["Authorization"] = f"Bearer {settings.DOMAINS_CT_API_KEY}"
    for _page in range(20):
        query = [
            ("domain", domain),
            ("include_subdomains", "true"),
            ("expand", "dns_names"),
            ("expand", "issuer"),
        ]
        if after:
            query.append(("after", after))
        url = f"{base}/v1/issuances?{urllib.parse.urlencode(query)}"
        try:
            response = requests.get(url, timeout=net.timeout(), headers=headers)
        except requests.RequestException as exc:
            raise ProbeError(f"CT monitor: {exc}") from exc
        if response.status_code != 200:
            raise ProbeError(f"CT monitor: HTTP {response.status_code}")
        try:
            issuances = response.json()
        except ValueError as exc:
            raise ProbeError("CT monitor: not JSON") from exc
        if not isinstance(issuances, list) or not issuances:
            break
        for item in issuances:
            if not isinstance(item, dict) or "id" not in item:
                raise ProbeError("CT monitor: an issuance without an id")
            known[str(item["id"])] = {
                "id": str(item["id"]),
                "dns_names": sorted(str(n) for n in item.get("dns_names", []) or []),
                "pubkey_sha256": str(item.get("pubkey_sha256", "")).lower(),
                "tbs_sha256": str(item.get("tbs_sha256", "")).lower(),
                "issuer": _issuer_name(item.get("issuer")),
                "not_before": str(item.get("not_before", "")),
                "not_after": str(item.get("not_after", "")),
            }
            after = str(item["id"])
    now = context.now.isoformat()
    current = [c for c in known.values() if not c["not_after"] or c["not_after"] > now]
    return {"after": after, "certificates": sorted(current, key=lambda c: c["id"])}


# --- content, wellknown, hsts -------------------------------------------------------------------


class _Assets(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []  # (url, integrity)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "script" and values.get("src"):
            self.found.append((values["src"], values.get("integrity", "")))
        elif tag == "link" and values.get("href"):
            rel = values.get("rel", "").lower().split()
            if {"stylesheet", "modulepreload", "preload"} & set(rel):
                self.found.append((values["href"], values.get("integrity", "")))


def _same_origin_path(domain: str, page: str, url: str) -> str | None:
    absolute = urllib.parse.urljoin(f"https://{domain}{page}", url)
    parsed = urllib.parse.urlsplit(absolute)
    if parsed.scheme != "https" or (parsed.hostname or "").lower() != domain.lower():
        return None
    return parsed.path + (f"?{parsed.query}" if parsed.query else "")


def _sri_ok(integrity: str, body: bytes) -> bool:
    import base64

    for token in integrity.split():
        algorithm, _, expected = token.partition("-")
        if algorithm in ("sha256", "sha384", "sha512"):
            digest = base64.b64encode(hashlib.new(algorithm, body).digest()).decode()
            if digest == expected:
                return True
    return False


def observe_content(domain: str, context: ProbeContext) -> dict[str, Any]:
    """sha256 of each page and of every same-origin script/stylesheet it references, per address;
    assets whose bytes do not match their SRI hash are listed in `sri_mismatch`."""
    hashes: dict[str, set[str]] = {}
    sri_mismatch: set[str] = set()
    for address in context.addresses(domain):
        for page in settings.DOMAINS_CONTENT_PATHS:
            fetched = net.fetch(domain=domain, address=address, path=page)
            hashes.setdefault(page, set()).add(
                f"{fetched.status}:{hashlib.sha256(fetched.body).hexdigest()}"
            )
            parser = _Assets()
            parser.feed(fetched.body.decode("utf-8", errors="replace"))
            for url, integrity in parser.found:
                path = _same_origin_path(domain, page, url)
                if path is None:
                    continue
                asset = net.fetch(domain=domain, address=address, path=path)
                hashes.setdefault(path, set()).add(
                    f"{asset.status}:{hashlib.sha256(asset.body).hexdigest()}"
                )
                if integrity and not _sri_ok(integrity, asset.body):
                    sri_mismatch.add(path)
    return {
        "hashes": {path: sorted(values) for path, values in sorted(hashes.items())},
        "sri_mismatch": sorted(sri_mismatch),
    }


def observe_wellknown(domain: str, context: ProbeContext) -> dict[str, Any]:
    seen: set[tuple[str, ...]] = set()
    status = 0
    for address in context.addresses(domain):
        fetched = net.fetch(domain=domain, address=address, path="/.well-known/webauthn")
        status = fetched.status
        origins: list[str] = []
        if fetched.status == 200:
            try:
                document = json.loads(fetched.body)
                origins = sorted(str(o) for o in document.get("origins", []))
            except (ValueError, AttributeError):
                origins = ["(not a related-origins document)"]
        seen.add(tuple(origins))
    merged = sorted({origin for origins in seen for origin in origins})
    return {"status": status, "origins": merged}


def observe_hsts(domain: str, context: ProbeContext) -> dict[str, Any]:
    values = set()
    for address in context.addresses(domain):
        fetched = net.fetch(domain=domain, address=address, path="/")
        values.add(fetched.headers.get("strict-transport-security", ""))
    # The weakest answer counts: one address without the header is one too many.
    header = "" if "" in values else sorted(values)[0]
    max_age = 0
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "max-age":
            try:
                max_age = int(value.strip().strip('"'))
            except ValueError:
                max_age = 0
    lowered = header.lower()
    return {
        "header": header,
        "max_age": max_age,
        "include_subdomains": "includesubdomains" in lowered,
        "preload": "preload" in lowered,
    }


# --- onchain ---------------------------------------------------------------------------------


def observe_onchain(domain: str, context: ProbeContext) -> dict[str, Any]:
    """From the indexer: passkeys active on chain for an origin outside PORTAL_ORIGINS, and key
    additions in the last DOMAINS_KEY_BURST_SECONDS across accounts."""
    from domains.selectors import active_keys_by_origin, recent_key_additions

    allowed = set(settings.PORTAL_ORIGINS) | set(settings.PORTAL_RELATED_ORIGINS)
    unexpected: dict[str, list[str]] = {}
    for origin, accounts in active_keys_by_origin().items():
        if origin not in allowed:
            unexpected[origin] = sorted(accounts)
    since = context.now - timedelta(seconds=settings.DOMAINS_KEY_BURST_SECONDS)
    additions = recent_key_additions(since=since)
    return {
        "unexpected_origins": unexpected,
        "recent_additions": additions["count"],
        "recent_accounts": additions["accounts"],
    }


PROBES: dict[str, Callable[[str, ProbeContext], dict[str, Any]]] = {
    Signal.RDAP: observe_rdap,
    Signal.DNS: observe_dns,
    Signal.TLS: observe_tls,
    Signal.CT: observe_ct,
    Signal.CONTENT: observe_content,
    Signal.WELLKNOWN: observe_wellknown,
    Signal.HSTS: observe_hsts,
    Signal.ONCHAIN: observe_onchain,
}
