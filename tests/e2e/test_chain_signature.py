"""A real browser's passkey moves a smart account on chain.

Headless Chromium's virtual authenticator registers an ES256 passkey on http://localhost:PORT;
the account is deployed with that public key for that origin; then the authenticator signs
user-operation hashes as WebAuthn challenges and EntryPoint.handleOps accepts each assertion (gas
paid by the paymaster). About half of ECDSA signatures have a high s: the test keeps signing until
at least one did, and checks that the normalised one was accepted while the raw one is refused.
"""

import base64
import http.server
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from eth_utils import to_checksum_address
from selenium import webdriver
from web3.logs import DISCARD

from chain import userops
from chain.client import Sender, account_from_key, connect
from chain.devtools import deploy, devnet
from chain.devtools.devkit import ANVIL_KEYS, Harness
from chain.passkey_signatures import P256_N, passkey_signature

pytestmark = [pytest.mark.e2e, pytest.mark.chain]

RECIPIENT = "0x000000000000000000000000000000000000bEEF"
MIN_SIGNATURES = 4
MAX_SIGNATURES = 40

REGISTER_JS = """
const done = arguments[arguments.length - 1];
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
navigator.credentials.create({publicKey: {
  rp: {id: "localhost", name: "Passkey Portal test"},
  user: {id: crypto.getRandomValues(new Uint8Array(16)), name: "chain@test", displayName: "Chain"},
  challenge: crypto.getRandomValues(new Uint8Array(32)),
  pubKeyCredParams: [{type: "public-key", alg: -7}],
  authenticatorSelection: {residentKey: "required", userVerification: "required"},
}}).then(
  (c) => done({id: b64(c.rawId), publicKey: b64(c.response.getPublicKey())}),
  (e) => done({error: String(e)}),
);
"""

SIGN_JS = """
const [challengeB64, idB64, done] = arguments;
const bytes = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
navigator.credentials.get({publicKey: {
  challenge: bytes(challengeB64),
  rpId: "localhost",
  allowCredentials: [{type: "public-key", id: bytes(idB64)}],
  userVerification: "required",
}}).then(
  (a) => done({
    authenticatorData: b64(a.response.authenticatorData),
    clientDataJSON: b64(a.response.clientDataJSON),
    signature: b64(a.response.signature),
  }),
  (e) => done({error: String(e)}),
);
"""


class _BlankPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"<!doctype html><title>chain signature test</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A blank page on http://localhost:PORT (WebAuthn refuses IP addresses)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BlankPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    node = devnet.start_anvil()
    try:
        w3 = connect(node.url)
        result = deploy.deploy_all(
            sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
            sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
            paymaster_deposit_wei=10**19,
        )
        yield Harness(w3=w3, addresses=result.addresses)
    finally:
        node.stop()


def _b64(data: str) -> bytes:
    return base64.b64decode(data)


def test_browser_passkey_signature_is_accepted_on_chain(
    browser: webdriver.Chrome, virtual_authenticator: Any, page_origin: str, harness: Harness
) -> None:
    browser.get(page_origin + "/")
    browser.set_script_timeout(20)
    registered = browser.execute_async_script(REGISTER_JS)
    assert "error" not in registered, registered
    credential_id = _b64(registered["id"])
    public_key = load_der_public_key(_b64(registered["publicKey"]))
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    numbers = public_key.public_numbers()

    # The account: WebAuthnValidator holds this passkey for the page's origin; no ETH for gas.
    init_data = userops.initialize_account_data(
        modules=[harness.validator.address],
        data=[
            userops.webauthn_install_data(
                credential_id=credential_id, public_key=(numbers.x, numbers.y), origin=page_origin
            )
        ],
    )
    account = harness.factory.functions.predictAccountAddress(b"\x01" * 32, init_data).call()
    harness.sender.transact(harness.factory, "deployAccount", b"\x01" * 32, init_data)
    harness.sender.send(to=account, value=MAX_SIGNATURES)  # the 1-wei transfers, not gas

    accepted = 0
    high_s_accepted = 0
    for _ in range(MAX_SIGNATURES):
        op = harness.sponsor(
            harness.build(account, userops.execute_call_data(target=RECIPIENT, value=1))
        )
        op_hash = harness.op_hash(op)
        assertion = browser.execute_async_script(
            SIGN_JS, base64.b64encode(op_hash).decode(), registered["id"]
        )
        assert "error" not in assertion, assertion
        client_data_json = _b64(assertion["clientDataJSON"])
        assert page_origin.encode() in client_data_json
        signature = passkey_signature(
            validator=harness.validator.address,
            authenticator_data=_b64(assertion["authenticatorData"]),
            client_data_json=client_data_json,
            signature_der=_b64(assertion["signature"]),
            credential_id=credential_id,
        )
        signed = op.with_changes(signature=signature.encoded)
        # The browser's usual clientDataJSON travels in the compact form; both forms verify.
        if client_data_json.startswith(b'{"type":"webauthn.get","challenge":"') and (
            b"other_keys" not in client_data_json
        ):
            assert signature.compact_payload is not None
        assert harness.simulate_failure(op.with_changes(signature=signature.encoded_abi)) is None

        # Forged variants of this very assertion are refused on chain...
        raw_s = signature.__class__(**{**signature.__dict__, "s": P256_N - signature.s})
        assert harness.simulate_failure(signed.with_changes(signature=raw_s.encoded)) is not None
        other_origin = signature.__class__(
            **{
                **signature.__dict__,
                "client_data_json": client_data_json.replace(b"localhost", b"localhosT"),
            }
        )
        assert harness.simulate_failure(signed.with_changes(signature=other_origin.encoded))

        # ... and the assertion itself moves the account.
        receipt = harness.submit(signed)
        event = harness.entry_point.events.UserOperationEvent().process_receipt(
            receipt, errors=DISCARD
        )[0]["args"]
        assert event["success"] and event["paymaster"] == harness.paymaster.address
        accepted += 1
        high_s_accepted += signature.was_high_s
        if accepted >= MIN_SIGNATURES and high_s_accepted:
            break

    print(f"\n{accepted} browser signatures accepted, {high_s_accepted} normalised from high s")
    assert high_s_accepted >= 1, "no high-s signature in the sample"
    assert harness.w3.eth.get_balance(to_checksum_address(RECIPIENT)) == accepted
    assert harness.next_nonce(account) == accepted
