"""A small Internet on loopback for the domain watch: an authoritative DNS server (dnslib) whose
zone a test edits, HTTPS servers for the watched domain on 127.0.0.1 and 127.0.0.2 (certificates
from two trustme CAs, one trusted through DOMAINS_CA_FILE, one not), and the RDAP and CT services
(pytest-httpserver). Nothing leaves the machine."""

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import dns.dnssec
import dns.name
import dns.rrset
import trustme
from cryptography.hazmat.primitives.asymmetric import ec
from dnslib import QTYPE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

DOMAIN = "example.test"


class Zone(BaseResolver):
    """Answers from `records`: {rdtype: (ttl, [rdata text])} for DOMAIN; RRSIGs with their set."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[int, list[str]]] = {}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        question = request.q
        lines = [
            f"{DOMAIN}. {ttl} IN {rdtype} {data}"
            for rdtype, (ttl, values) in self.records.items()
            for data in values
        ]
        for rr in RR.fromZone("\n".join(lines)) if lines else []:
            if rr.rname != question.qname:
                continue
            covered = rr.rtype == QTYPE.RRSIG and rr.rdata.covered == question.qtype
            if rr.rtype == question.qtype or covered:
                reply.add_answer(rr)
        return reply


def signed_keys() -> tuple[str, str, str]:
    """A DNSKEY, its self-signature (RRSIG) and the matching DS, as zone text."""
    name = dns.name.from_text(DOMAIN + ".")
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(
        key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257
    )
    signature = dns.dnssec.sign(
        dns.rrset.from_rdata(name, 300, dnskey), key, name, dnskey, lifetime=30 * 86400
    )
    return (
        dnskey.to_text(),
        signature.to_text(),
        dns.dnssec.make_ds(name, dnskey, "SHA256").to_text(),
    )


@dataclass
class Site:
    """What the HTTPS servers serve: {path: (status, headers, body)}, and with which certificate."""

    pages: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    context: ssl.SSLContext | None = None


class _Handler(BaseHTTPRequestHandler):
    site: Site

    def do_GET(self) -> None:
        status, headers, body = self.server.site.pages.get(  # type: ignore[attr-defined]
            self.path, (404, {}, b"not found")
        )
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], site: Site) -> None:
        self.site = site
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        assert self.site.context is not None
        sock.settimeout(5)
        return self.site.context.wrap_socket(sock, server_side=True), address


def free_port_on_both() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            with socket.socket() as other:
                other.bind(("127.0.0.2", port))
            return int(port)
        except OSError:
            continue
    raise RuntimeError("no port free on both 127.0.0.1 and 127.0.0.2")


class World:
    def __init__(self, *, tmp_path: Any, httpserver: Any) -> None:
        self.trusted_ca = trustme.CA(organization_name="Portal Test Trusted CA")
        self.rogue_ca = trustme.CA(organization_name="Rogue Test CA")
        self.ca_file = tmp_path / "trusted.pem"
        self.trusted_ca.cert_pem.write_to_path(str(self.ca_file))
        self.zone = Zone()
        self.dns = DNSServer(
            self.zone, port=0, address="127.0.0.1", logger=DNSLogger(logf=lambda _: None)
        )
        self.dns.start_thread()
        self.dns_port = self.dns.server.server_address[1]
        self.https_port = free_port_on_both()
        self.sites = {address: Site() for address in ("127.0.0.1", "127.0.0.2")}
        self.servers = []
        for address, site in self.sites.items():
            server = _TLSServer((address, self.https_port), site)
            threading.Thread(target=server.serve_forever, daemon=True).start()
            self.servers.append(server)
        self.httpserver = httpserver
        self.rdap: dict[str, Any] = {}
        self.ct: list[dict[str, Any]] = []
        self.ct_requests: list[dict[str, str]] = []
        self._serve_json()
        self.reset()

    # --- the state of a healthy domain ---

    def reset(self) -> None:
        self.dnskey, self.rrsig, self.ds = signed_keys()
        self.zone.records = {
            "NS": (3600, ["ns1.example.test.", "ns2.example.test."]),
            "A": (300, ["127.0.0.1"]),
            "CAA": (3600, ['0 issue "trusted.test"']),
            "DS": (3600, [self.ds]),
            "DNSKEY": (3600, [self.dnskey]),
            "RRSIG": (3600, [self.rrsig]),
        }
        self.trusted_cert = self.trusted_ca.issue_cert(DOMAIN)
        for site in self.sites.values():
            self.serve_certificate(site, self.trusted_cert)
            site.pages = self.good_pages()
        now = datetime.now(tz=UTC)
        self.rdap = {
            "objectClassName": "domain",
            "ldhName": DOMAIN,
            "status": ["active", "client transfer prohibited", "server delete prohibited"],
            "events": [
                {"eventAction": "registration", "eventDate": "2020-01-01T00:00:00Z"},
                {
                    "eventAction": "expiration",
                    "eventDate": (now + timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                },
                {"eventAction": "last changed", "eventDate": "2025-06-01T00:00:00Z"},
            ],
            "entities": [
                {
                    "objectClassName": "entity",
                    "roles": ["registrar"],
                    "publicIds": [{"type": "IANA Registrar ID", "identifier": "292"}],
                    "vcardArray": [
                        "vcard",
                        [["version", {}, "text", "4.0"], ["fn", {}, "text", "Good Registrar"]],
                    ],
                }
            ],
            "nameservers": [{"ldhName": "ns1.example.test"}, {"ldhName": "ns2.example.test"}],
            "secureDNS": {"delegationSigned": True},
        }
        self.ct = [self.issuance("1000", self.trusted_cert)]

    def good_pages(self) -> dict[str, tuple[int, dict[str, str], bytes]]:
        hsts = {"Strict-Transport-Security": "max-age=31536000; includeSubDomains"}
        html = {"Content-Type": "text/html", **hsts}
        page = (
            b'<!doctype html><link rel="stylesheet" href="/static/site.css">'
            b'<script type="module" src="/static/login.js"></script>'
            b'<script src="https://cdn.elsewhere.test/x.js"></script><h1>Sign in</h1>'
        )
        return {
            "/": (200, html, b"<h1>Portal</h1>"),
            "/login": (200, html, page),
            "/signup": (200, html, b"<h1>Sign up</h1>"),
            "/static/site.css": (200, {"Content-Type": "text/css"}, b"body{color:black}"),
            "/static/login.js": (200, {"Content-Type": "text/javascript"}, b"console.log('ok')"),
            "/.well-known/webauthn": (
                200,
                {"Content-Type": "application/json", **hsts},
                json.dumps(
                    {"origins": ["https://example.test", "https://app.example.test"]}
                ).encode(),
            ),
        }

    def serve_certificate(self, site: Site, certificate: trustme.LeafCert) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certificate.configure_cert(context)
        site.context = context

    def serve_everywhere(self, certificate: trustme.LeafCert) -> None:
        for site in self.sites.values():
            self.serve_certificate(site, certificate)

    def issuance(
        self,
        issuance_id: str,
        certificate: trustme.LeafCert,
        issuer: str = "Portal Test Trusted CA",
    ) -> dict[str, Any]:
        from domains.probes.net import describe_certificate

        described = describe_certificate(_der(certificate))
        return {
            "id": issuance_id,
            "tbs_sha256": "00" * 32,
            "dns_names": [DOMAIN],
            "pubkey_sha256": described["spki_sha256"],
            "issuer": {"friendly_name": issuer, "name": f"O={issuer}"},
            "not_before": described["not_before"],
            "not_after": described["not_after"],
        }

    # --- the RDAP and CT services ---

    def _serve_json(self) -> None:
        from werkzeug import Request, Response

        base = self.httpserver.url_for("/rdap/")

        def bootstrap(request: Request) -> Response:
            body = {"version": "1.0", "services": [[["test"], [base]]]}
            return Response(json.dumps(body), content_type="application/json")

        def rdap(request: Request) -> Response:
            return Response(json.dumps(self.rdap), content_type="application/rdap+json")

        def ct(request: Request) -> Response:
            self.ct_requests.append(dict(request.args))
            after = request.args.get("after")
            items = [i for i in self.ct if after is None or int(i["id"]) > int(after)]
            return Response(json.dumps(items), content_type="application/json")

        self.httpserver.expect_request("/bootstrap.json").respond_with_handler(bootstrap)
        self.httpserver.expect_request(f"/rdap/domain/{DOMAIN}").respond_with_handler(rdap)
        self.httpserver.expect_request("/ct/v1/issuances").respond_with_handler(ct)

    def settings(self) -> dict[str, Any]:
        return {
            "DOMAINS_WATCH": [DOMAIN],
            "DOMAINS_DNS_RESOLVERS": [f"127.0.0.1:{self.dns_port}"],
            "DOMAINS_HTTPS_PORT": self.https_port,
            "DOMAINS_CA_FILE": str(self.ca_file),
            "DOMAINS_RDAP_BOOTSTRAP_URL": self.httpserver.url_for("/bootstrap.json"),
            "DOMAINS_CT_URL": self.httpserver.url_for("/ct"),
            "DOMAINS_TIMEOUT_SECONDS": 3.0,
        }

    def close(self) -> None:
        self.dns.stop()
        for server in self.servers:
            server.shutdown()
            server.server_close()


def _der(certificate: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(certificate.cert_chain_pems[0].bytes().decode())
