"""Network primitives of the watch: DNS questions to the watched resolvers, and TLS/HTTPS to the
addresses they return (never through the system resolver), with SNI and Host set to the domain."""

import hashlib
import http.client
import socket
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.resolver
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.conf import settings

MAX_BODY_BYTES = 2 * 1024 * 1024


class ProbeError(Exception):
    """The probe could not observe (unreachable, malformed answer): the check's state is unknown."""


def parse_resolver(entry: str) -> tuple[str, int]:
    """`host:port`, `[v6]:port` or a bare address (port 53)."""
    entry = entry.strip()
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, int(rest.lstrip(":") or 53)
    if entry.count(":") == 1:
        host, port = entry.split(":")
        return host, int(port)
    return entry, 53


def resolvers() -> list[tuple[str, int]]:
    """DOMAINS_DNS_RESOLVERS as (address, port); empty: the system's configured nameservers."""
    if not settings.DOMAINS_DNS_RESOLVERS:
        return [(str(address), 53) for address in dns.resolver.Resolver().nameservers]
    return [parse_resolver(entry) for entry in settings.DOMAINS_DNS_RESOLVERS]


def timeout() -> float:
    return float(settings.DOMAINS_TIMEOUT_SECONDS)


@dataclass
class RRset:
    ttl: int | None
    records: list[str]
    signatures: list[Any] = field(default_factory=list)
    rrset: Any = None


def ask(*, name: str, rdtype: str, resolver: tuple[str, int], dnssec: bool = False) -> RRset:
    """One question to one resolver (UDP, TCP when truncated); NXDOMAIN/NODATA is an empty set."""
    query = dns.message.make_query(name, rdtype, want_dnssec=dnssec)
    if dnssec:
        query.flags |= dns.flags.CD  # fetch what is there; validated here
    address, port = resolver
    try:
        response, _ = dns.query.udp_with_fallback(query, address, port=port, timeout=timeout())
    except (OSError, dns.exception.DNSException) as exc:
        raise ProbeError(f"{address}:{port} did not answer {rdtype} {name}: {exc}") from exc
    wanted = dns.rdatatype.from_text(rdtype)
    qname = dns.name.from_text(name)
    records: list[str] = []
    ttl: int | None = None
    signatures: list[Any] = []
    found = None
    for rrset in response.answer:
        if rrset.name != qname:
            continue
        if rrset.rdtype == wanted:
            found = rrset
            ttl = rrset.ttl
            texts = (rdata.to_text() for rdata in rrset)
            # Names are case-insensitive; key material (base64) is not.
            records = sorted(t.lower() if rdtype in ("NS", "CNAME") else t for t in texts)
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == wanted:
            signatures.append(rrset)
    return RRset(ttl=ttl, records=records, signatures=signatures, rrset=found)


def addresses_of(domain: str) -> list[str]:
    """Every A and AAAA address any watched resolver gives for the domain, sorted."""
    found: set[str] = set()
    errors = []
    for resolver in resolvers():
        for rdtype in ("A", "AAAA"):
            try:
                found.update(ask(name=domain, rdtype=rdtype, resolver=resolver).records)
            except ProbeError as exc:
                errors.append(str(exc))
    if not found and errors:
        raise ProbeError("; ".join(errors))
    return sorted(found)


def tls_context(*, verify: bool = True) -> ssl.SSLContext:
    """The system's trust store plus DOMAINS_CA_FILE; hostname checked."""
    context = ssl.create_default_context()
    if settings.DOMAINS_CA_FILE:
        context.load_verify_locations(cafile=settings.DOMAINS_CA_FILE)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _connect(address: str, domain: str, context: ssl.SSLContext) -> ssl.SSLSocket:
    sock = socket.create_connection((address, settings.DOMAINS_HTTPS_PORT), timeout=timeout())
    try:
        return context.wrap_socket(sock, server_hostname=domain)
    except BaseException:
        sock.close()
        raise


def describe_certificate(der: bytes) -> dict[str, Any]:
    certificate = x509.load_der_x509_certificate(der)
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    try:
        sans = sorted(
            certificate.extensions.get_extension_for_class(
                x509.SubjectAlternativeName
            ).value.get_values_for_type(x509.DNSName)
        )
    except x509.ExtensionNotFound:
        sans = []
    return {
        "spki_sha256": hashlib.sha256(spki).hexdigest(),
        "sha256": hashlib.sha256(der).hexdigest(),
        "issuer": certificate.issuer.rfc4514_string(),
        "subject": certificate.subject.rfc4514_string(),
        "sans": sans,
        "not_before": certificate.not_valid_before_utc.isoformat(),
        "not_after": certificate.not_valid_after_utc.isoformat(),
    }


def leaf_certificate(*, address: str, domain: str) -> dict[str, Any]:
    """The certificate `address` presents for SNI `domain`: verified against the trust store; a
    certificate that does not verify is still described, with `verified: false` and why."""
    try:
        with _connect(address, domain, tls_context()) as tls:
            der = tls.getpeercert(binary_form=True)
        assert der is not None  # noqa: S101 - a verified handshake always has one
        return {**describe_certificate(der), "verified": True, "error": ""}
    except ssl.SSLCertVerificationError as exc:
        reason = exc.verify_message or str(exc)
    except OSError as exc:
        raise ProbeError(f"{address}: {exc}") from exc
    try:
        with _connect(address, domain, tls_context(verify=False)) as tls:
            der = tls.getpeercert(binary_form=True)
    except OSError as exc:
        raise ProbeError(f"{address}: {exc}") from exc
    if der is None:
        raise ProbeError(f"{address}: no certificate")
    return {**describe_certificate(der), "verified": False, "error": reason}


@dataclass
class Fetched:
    status: int
    headers: dict[str, str]
    body: bytes


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one given address, with SNI (and the verified name) of the domain."""

    def __init__(self, *, domain: str, address: str) -> None:
        super().__init__(
            domain, settings.DOMAINS_HTTPS_PORT, context=tls_context(), timeout=timeout()
        )
        self._address = address

    def connect(self) -> None:
        self.sock = _connect(self._address, self.host, self._context)  # type: ignore[attr-defined]


def fetch(*, domain: str, address: str, path: str) -> Fetched:
    """GET https://domain/path from `address`, certificate verified; redirects not followed."""
    connection = _PinnedHTTPSConnection(domain=domain, address=address)
    try:
        connection.request(
            "GET",
            path,
            headers={"Host": domain, "User-Agent": "passkey-portal-domain-watch", "Accept": "*/*"},
        )
        response = connection.getresponse()
        body = response.read(MAX_BODY_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeError(f"https://{domain}{path} at {address}: {exc}") from exc
    finally:
        connection.close()
    if len(body) > MAX_BODY_BYTES:
        raise ProbeError(f"https://{domain}{path} at {address}: larger than {MAX_BODY_BYTES} bytes")
    return Fetched(
        status=response.status,
        headers={key.lower(): value for key, value in response.getheaders()},
        body=body,
    )


def utcnow() -> datetime:
    return datetime.now(tz=UTC)
