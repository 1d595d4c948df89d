"""Session relay benchmark: how many session-signed user operations the relay takes per second.

Starts its own anvil and Redis on a fresh PostgreSQL database, opens N accounts each with one
active session (created through the portal's own flow: request, passkey approval, pipeline,
indexer), then times, in one process through the HTTP API (Django's test client):

- relay: for every session, `POST sessions/operations/prepare` (policy check with sessionState
  read from chain, nonce, sponsorship), the session key's signature, `POST sessions/operations`
  (decoding, policy check again with the signature, the pipeline's operation);
- confirmed: the pipeline (submit, track) run in-process on those operations until confirmed.

Run: `python bench/session_relay.py [--sessions N]` (DATABASE_URL's server; a database named
portal_bench_sessions is dropped and created; redis-server on PATH). A report, not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from bench.support import fresh_database  # noqa: E402 - after the path is set

ORIGIN = "http://localhost:8001"
RECIPIENT = "0x000000000000000000000000000000000000bEEF"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument(
        "--database-server",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    from chain.devtools import devnet
    from chain.devtools.processes import RedisServer

    database_url = fresh_database(args.database_server, "portal_bench_sessions")
    redis = RedisServer()
    redis.start()
    os.environ.update(
        {"DATABASE_URL": database_url, "REDIS_URL": redis.url, "DJANGO_LOG_LEVEL": "WARNING"}
    )
    import django

    django.setup()
    node = devnet.start_anvil()
    from django.conf import settings

    settings.CHAIN_RPC_URL = node.url
    settings.ALLOWED_HOSTS = ["*"]
    try:
        run(args.sessions)
    finally:
        node.stop()
        redis.stop()


def run(count: int) -> None:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.test import Client
    from eth_account import Account

    from accounts.models import SmartAccount, User
    from chain import session_keys, userops
    from chain.client import Sender, account_from_key, connect
    from chain.devtools import deploy
    from chain.devtools.authenticator import SoftAuthenticator
    from chain.devtools.devkit import ANVIL_KEYS
    from chain.indexer import index_chain
    from chain.models import ChainOperation, Deployment
    from chain.pipeline.submit import submit
    from chain.pipeline.track import track
    from passkeys.approvals import approval_options, approve_operation
    from passkeys.models import Passkey
    from passkeys.onchain import open_account_for
    from portal.client_info import ClientInfo
    from sessionkeys.services import preview_session, request_session

    w3 = connect()
    funder = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0]))
    addresses = deploy.deploy_all(
        sender=funder,
        sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        paymaster_deposit_wei=10**20,
    ).addresses
    for name, address in addresses.items():
        Deployment.objects.update_or_create(
            chain_id=w3.eth.chain_id, name=name, defaults={"address": address, "code_hash": "0x"}
        )
    authenticator = SoftAuthenticator()
    client_info = ClientInfo(ip_address=None, user_agent="bench")

    def finish(operation_id: int) -> None:
        outcome = submit(operation_id=operation_id)
        while outcome.pending and outcome.status != "confirmed":
            time.sleep(0.01)
            outcome = track(operation_id=operation_id)
        if outcome.status != "confirmed":
            raise SystemExit(f"operation {operation_id}: {outcome.status}")

    sessions: list[tuple[Any, Any]] = []
    print(f"opening {count} accounts with one session each…", flush=True)
    for _ in range(count):
        user = User.objects.create_user(f"bench-{uuid.uuid4().hex[:8]}")
        key = authenticator.add_credential(user_handle=bytes(user.user_handle))
        passkey = Passkey.objects.create(
            user=user, name="bench", credential_id=key.credential_id, public_key=key.cose_public_key
        )
        account = open_account_for(user=user, passkey=passkey)
        assert account is not None and account.deployment_id is not None
        finish(account.deployment_id)
        SmartAccount.objects.filter(pk=account.pk).update(status=SmartAccount.Status.DEPLOYED)
        Passkey.objects.filter(pk=passkey.pk).update(onchain=Passkey.OnChain.ACTIVE)
        funder.send(to=account.address, value=10**16)
        signer = Account.create()
        now = int(w3.eth.get_block("latest")["timestamp"])
        params = {
            "sessionConfig": {
                "signer": signer.address,
                "expiresAt": now + 3600,
                "feeLimit": {"limitType": "lifetime", "limit": str(10**17)},
                "transferPolicies": [
                    {
                        "target": RECIPIENT,
                        "maxValuePerUse": "1000",
                        "valueLimit": {"limitType": "lifetime", "limit": "10000"},
                    }
                ],
            }
        }
        preview = preview_session(
            user=user, origin=ORIGIN, method="sso_createSession", params=params
        )
        digest = bytes.fromhex(preview["proof_digest"][2:])
        proof = bytes(Account.unsafe_sign_hash(digest, signer.key).signature)
        session = request_session(
            user=user,
            origin=ORIGIN,
            method="sso_createSession",
            params=params,
            proof=proof,
            label="bench",
            client=client_info,
        )
        assert session.create_operation_id is not None
        _operation, options = approval_options(user=user, operation_id=session.create_operation_id)
        approve_operation(
            user=user,
            operation_id=session.create_operation_id,
            credential=authenticator.get(options),
            client=client_info,
        )
        finish(session.create_operation_id)
        sessions.append((session, signer))
    index_chain()

    http = Client(REMOTE_ADDR="198.51.100.1")
    settings_rate = "100000/min"
    from django.conf import settings

    settings.PORTAL_SESSION_RELAY_RATE = settings_rate
    started = time.monotonic()
    for session, signer in sessions:
        prepared = http.post(
            "/api/v1/sessions/operations/prepare",
            {
                "account": session.account.address,
                "session_hash": session.session_hash,
                "call": {"to": RECIPIENT, "value": "1000"},
            },
            content_type="application/json",
        )
        assert prepared.status_code == 200, prepared.content
        body = prepared.json()
        op = userops.user_operation_from_json(body["userOperation"])
        signature = bytes(
            Account.unsafe_sign_hash(bytes.fromhex(body["userOpHash"][2:]), signer.key).signature
        )
        spec = session_keys.SessionSpec.decode(bytes(session.spec))
        signed = op.with_changes(
            signature=session_keys.encode_session_signature(
                validator=body["validator"],
                signature=signature,
                spec=spec,
                period_ids=body["periodIds"],
            )
        )
        sent = http.post(
            "/api/v1/sessions/operations",
            {"userOperation": userops.user_operation_to_json(signed)},
            content_type="application/json",
        )
        assert sent.status_code == 202, sent.content
    relay_seconds = time.monotonic() - started
    ids = list(ChainOperation.objects.filter(kind="session_operation").values_list("pk", flat=True))
    started = time.monotonic()
    for operation_id in ids:
        finish(operation_id)
    confirm_seconds = time.monotonic() - started
    print(
        f"relay: {count} operations prepared, signed and accepted in {relay_seconds:.2f} s "
        f"= {count / relay_seconds:.1f} op/s (one process, HTTP through Django's test client)"
    )
    print(
        f"confirmed: {len(ids)} in {confirm_seconds:.2f} s = {len(ids) / confirm_seconds:.1f} op/s "
        "(submit and track in-process, one after another)"
    )


if __name__ == "__main__":
    main()
