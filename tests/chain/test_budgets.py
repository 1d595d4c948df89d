"""What the portal pays on chain is bounded: relayer and paymaster gas per hour and day, sponsored
operations per person per day; balances in /healthz; operators told when it runs low."""

import threading
import time
from typing import Any

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import SmartAccount, User
from chain.budgets import RELAYER, RELAYER_CALL_GAS, budgets, check_budgets, reserving
from chain.devtools.authenticator import SoftAuthenticator
from chain.models import ChainOperation
from passkeys.approvals import request_approval
from portal.errors import PortalError
from tests.chain.conftest import PipelineKit


def sign_up(username: str) -> Any:
    client = APIClient(REMOTE_ADDR="203.0.113.10")
    options = client.post(
        "/api/v1/auth/register/options", {"username": username}, format="json"
    ).json()
    return client.post(
        "/api/v1/auth/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": SoftAuthenticator().create(options["publicKey"]),
        },
        format="json",
    )


def test_sign_up_is_refused_once_the_relayers_budget_is_spent(
    pipeline_chain: dict[str, str], settings: Any
) -> None:
    settings.CHAIN_RELAYER_GAS_PER_HOUR = RELAYER_CALL_GAS * 3 // 2
    assert sign_up("first").status_code == 201
    refused = sign_up("second")
    assert refused.status_code == 429
    assert refused.json()["code"] == "budget_exhausted"
    # Nothing written: no user, no account, no operation for the second person.
    assert not User.objects.filter(username="second").exists()
    assert SmartAccount.objects.count() == ChainOperation.objects.count() == 1
    # The daily budget is checked too.
    settings.CHAIN_RELAYER_GAS_PER_HOUR = 10**12
    settings.CHAIN_RELAYER_GAS_PER_DAY = RELAYER_CALL_GAS
    assert sign_up("third").json()["code"] == "budget_exhausted"


def noop(kit: PipelineKit, user: Any, account: Any, key: str) -> ChainOperation:
    return request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=kit.noop_call(),
        idempotency_key=key,
        details={},
    )


def test_sponsored_operations_stop_at_the_paymasters_budget(
    pipeline_kit: PipelineKit, settings: Any
) -> None:
    user, _passkey, account = pipeline_kit.deployed_account("pam")
    first = noop(pipeline_kit, user, account, "first")
    settings.CHAIN_PAYMASTER_GAS_PER_DAY = first.reserved_gas * 3 // 2
    with pytest.raises(PortalError) as refused:
        noop(pipeline_kit, user, account, "second")
    assert (refused.value.code, refused.value.status_code) == ("budget_exhausted", 429)
    assert not ChainOperation.objects.filter(idempotency_key="second").exists()
    # An operation that expired unsigned cost nothing: its reservation is released.
    ChainOperation.objects.filter(pk=first.pk).update(status=ChainOperation.Status.EXPIRED)
    assert noop(pipeline_kit, user, account, "second").reserved_gas == first.reserved_gas
    paymaster_day = next(b for b in budgets() if (b.payer, b.window) == ("paymaster", "day"))
    assert paymaster_day.used == first.reserved_gas


def test_one_person_gets_a_limited_number_of_sponsored_operations_a_day(
    pipeline_kit: PipelineKit, settings: Any
) -> None:
    settings.PORTAL_SPONSORED_OPERATIONS_PER_DAY = 2
    user, _passkey, account = pipeline_kit.deployed_account("sam")
    noop(pipeline_kit, user, account, "one")
    noop(pipeline_kit, user, account, "two")
    assert noop(pipeline_kit, user, account, "two").idempotency_key == "two"  # the same one
    with pytest.raises(PortalError) as refused:
        noop(pipeline_kit, user, account, "three")
    assert (refused.value.code, refused.value.status_code) == ("sponsorship_limit_reached", 429)
    assert not ChainOperation.objects.filter(idempotency_key="three").exists()
    other, _other_passkey, other_account = pipeline_kit.deployed_account("tess")
    assert noop(pipeline_kit, other, other_account, "hers").user_op_hash


def test_health_shows_the_relayer_balance_and_the_paymaster_deposit(
    pipeline_chain: dict[str, str], settings: Any, client: Client
) -> None:
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    healthy = client.get("/healthz").json()
    assert healthy["chain"]["status"] == "ok"
    assert int(healthy["chain"]["relayer_balance_wei"]) > 0
    assert int(healthy["chain"]["paymaster_deposit_wei"]) >= 10**17
    settings.CHAIN_PAYMASTER_MIN_DEPOSIT_WEI = 10**30
    low = client.get("/healthz")
    assert low.status_code == 200
    assert low.json()["status"] == "degraded" and low.json()["chain"]["status"] == "degraded"


def test_operators_are_emailed_once_a_day_when_a_budget_or_balance_runs_low(
    pipeline_chain: dict[str, str], settings: Any
) -> None:
    settings.PORTAL_OPERATOR_EMAILS = ["ops@example.com"]
    settings.CHAIN_RELAYER_MIN_BALANCE_WEI = 10**30
    settings.CHAIN_RELAYER_GAS_PER_HOUR = RELAYER_CALL_GAS
    assert sign_up("ulla").status_code == 201  # uses the whole hourly budget
    found = check_budgets()
    assert set(found) == {"relayer budget per hour", "relayer_balance_wei"}
    assert len(mail.outbox) == 2
    assert all(message.to == ["ops@example.com"] for message in mail.outbox)
    assert "relayer budget per hour" in mail.outbox[0].subject
    check_budgets()
    assert len(mail.outbox) == 2  # told once a day


def _new_deployment(key: str) -> None:
    ChainOperation.objects.create(
        kind="deploy_account",
        status=ChainOperation.Status.SIGNED,
        chain_id=31337,
        idempotency_key=key,
        reserved_gas=RELAYER_CALL_GAS,
    )


def _waiting_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_two_requests_near_the_limit_cannot_both_pass(settings: Any) -> None:
    """The second request checks the budget while the first has reserved but not committed: it
    waits for the first, then sees it, and is refused. Checked and written one at a time."""
    settings.CHAIN_RELAYER_GAS_PER_HOUR = RELAYER_CALL_GAS * 3 // 2
    first_reserved, first_may_commit = threading.Event(), threading.Event()
    outcome: dict[str, str] = {}

    def first() -> None:
        try:
            with reserving(payer=RELAYER, gas=RELAYER_CALL_GAS):
                _new_deployment("first")
                first_reserved.set()
                first_may_commit.wait(30)
        finally:
            connection.close()

    def second() -> None:
        try:
            with reserving(payer=RELAYER, gas=RELAYER_CALL_GAS):
                _new_deployment("second")
            outcome["second"] = "created"
        except PortalError as exc:
            outcome["second"] = exc.code
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    threads[0].start()
    assert first_reserved.wait(30)
    threads[1].start()
    # Let the second request get as far as it can while the first is still open: done (no
    # lock: it saw room) or waiting for the first's lock.
    deadline = time.monotonic() + 30
    while "second" not in outcome and not _waiting_on_a_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    first_may_commit.set()
    for thread in threads:
        thread.join(30)
    assert outcome["second"] == "budget_exhausted"
    assert list(ChainOperation.objects.values_list("idempotency_key", flat=True)) == ["first"]
