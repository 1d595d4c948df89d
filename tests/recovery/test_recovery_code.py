"""The recovery code on anvil through the API, the browser's part played in Python with the
documented derivation: a code's address installed as an active guardian in one passkey-approved
operation; a recovery started with a key derived from the code (the relayer submits its
signature: the key never holds ETH), finalized after 24 hours; the new passkey signs in. And every
refusal: another code, a used or revoked code, a pending recovery, a spent budget, no such user."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from eth_account.signers.local import LocalAccount
from web3 import Web3

from accounts.models import AuditEvent
from chain import recovery_calls
from chain.client import Sender, account_from_key, contract
from chain.devtools import devnet
from chain.devtools.devkit import ANVIL_KEYS
from chain.indexer import index_chain
from chain.models import ChainOperation
from chain.pipeline.tick import expire_operations
from passkeys.models import Passkey
from recovery.models import Guardian, RecoveryRequest
from recovery.services import run_deadlines
from tests.chain.conftest import advance
from tests.recovery.conftest import Person, Recovery, make_guardian, move_chain_time
from tests.recovery.recovery_code import key_of, new_code, normalize, sign

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status
DAY = 24 * 3600


@pytest.fixture(autouse=True)
def _eager(celery_eager: Any) -> None:
    """Security emails are sent in-process (the pipeline is driven by hand with advance())."""


def create_code(person: Person) -> tuple[str, LocalAccount, dict[str, Any]]:
    """A new code made "in the browser", installed with the person's passkey: (code, key,
    the creation's response)."""
    code = new_code()
    key = key_of(code)
    options = person.post("/api/v1/recovery-codes/options", {"address": key.address})
    assert options.status_code == 200, options.content
    typed = options.json()["typed_data"]
    assert typed["primaryType"] == "AcceptGuardian"
    assert typed["message"]["account"] == person.account.address
    created = person.post(
        "/api/v1/recovery-codes",
        {
            "address": key.address,
            "deadline": typed["message"]["deadline"],
            "signature": sign(key, typed),
        },
    )
    assert created.status_code == 201, created.content
    assert person.approve(created.json()["operation"]) == Status.CONFIRMED
    return code, key, created.json()


def guardian_status(w3: Web3, chain: dict[str, str], account: str, guardian: str) -> list[bool]:
    executor = contract(w3, "GuardianExecutor", chain["GuardianExecutor"])
    return list(executor.functions.guardianStatusFor(account, guardian).call())


def start_with_code(device: Recovery, recovery_id: str, key: LocalAccount) -> Any:
    options = device.client.get(f"/api/v1/recoveries/{recovery_id}/recovery-code")
    if options.status_code != 200:
        return options
    typed = options.json()["typed_data"]
    return device.client.post(
        f"/api/v1/recoveries/{recovery_id}/recovery-code",
        {"deadline": typed["message"]["deadline"], "signature": sign(key, typed)},
        format="json",
    )


def test_a_code_recovers_the_account_after_24_hours(
    people: dict[str, Person], anvil: devnet.Anvil, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice = people["alice"]
    code, key, created = create_code(alice)
    assert created["operation"]["kind"] == "create_recovery_code"
    assert created["guardian"]["kind"] == "recovery_key"
    assert guardian_status(w3, pipeline_chain, alice.account.address, key.address) == [True, True]
    current = alice.client.get("/api/v1/recovery-codes").json()["recovery_code"]
    assert current["address"] == key.address and current["status"] == "active"
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.GUARDIAN_CHANGED, details__action="recovery_code_created"
    ).exists()
    assert not AuditEvent.objects.filter(details__icontains=normalize(code)).exists()
    assert alice.client.get("/api/v1/me").json()["resilience"]["facts"]["recovery_keys"] == 1
    alice.client.force_login(alice.user)
    page = alice.client.get("/account/recovery").content.decode()
    assert "You have an active recovery code" in page and key.address in page
    assert "Revoke the code" in page and normalize(code) not in page

    # Every device lost: on a new one, the person types the code (in any case, with spaces).
    device = Recovery()
    assert 'name="recovery_code"' in device.client.get("/recover").content.decode()
    started = device.start("alice")
    assert started.status_code == 201, started.content
    status_page = device.client.get(f"/recover/{started.json()['id']}").content.decode()
    assert 'id="recovery-code-form"' in status_page
    typed_key = key_of(code.lower().replace("-", " "))
    response = start_with_code(device, started.json()["id"], typed_key)
    assert response.status_code == 201, response.content
    operation = response.json()["operation"]
    assert operation["kind"] == "initialize_recovery_with_code"
    assert advance(operation["id"], until={Status.CONFIRMED, Status.FAILED}) == Status.CONFIRMED
    index_chain()
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.INITIATED
    assert request.initiated_by == key.address
    assert w3.eth.get_balance(key.address) == 0  # the relayer paid
    assert Guardian.objects.get(address=key.address).used_at is not None
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.RECOVERY_APPROVED, details__method="recovery_code"
    ).exists()

    move_chain_time(anvil, DAY + 60)
    assert run_deadlines().finalizing == 1
    request.refresh_from_db()
    assert request.finalize_operation is not None
    assert advance(request.finalize_operation.pk, until={Status.CONFIRMED, Status.FAILED}) == (
        Status.CONFIRMED
    )
    index_chain()
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.FINALIZED
    assert request.passkey is not None and request.passkey.onchain == Passkey.OnChain.ACTIVE

    login = device.client.post("/api/v1/auth/login/options", {"username": "alice"}, format="json")
    credential = device.authenticator.get(login.json()["publicKey"])
    signed_in = device.client.post(
        "/api/v1/auth/login/verify",
        {"ceremony_id": login.json()["ceremony_id"], "credential": credential},
        format="json",
    )
    assert signed_in.status_code == 200, signed_in.content

    # The code worked once: a second recovery with it is refused.
    again = Recovery().start("alice")
    assert again.status_code == 201, again.content
    used = start_with_code(Recovery(), again.json()["id"], key)
    assert used.status_code == 409 and used.json()["code"] == "recovery_code_used"


def test_another_code_is_refused_and_nothing_is_sent(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    create_code(people["alice"])
    device = Recovery()
    started = device.start("alice")
    wrong = start_with_code(device, started.json()["id"], key_of(new_code()))
    assert wrong.status_code == 403 and wrong.json()["code"] == "recovery_code_mismatch"
    request = RecoveryRequest.objects.get()
    assert request.initiate_operation is None and request.approved_by is None
    assert not ChainOperation.objects.filter(kind="initialize_recovery_with_code").exists()


def test_a_stale_or_malformed_signature_is_refused(people: dict[str, Person]) -> None:
    _code, key, _ = create_code(people["alice"])
    device = Recovery()
    recovery_id = device.start("alice").json()["id"]
    typed = device.client.get(f"/api/v1/recoveries/{recovery_id}/recovery-code").json()
    typed = typed["typed_data"]
    typed["message"]["deadline"] -= 7200
    late = device.client.post(
        f"/api/v1/recoveries/{recovery_id}/recovery-code",
        {"deadline": typed["message"]["deadline"], "signature": sign(key, typed)},
        format="json",
    )
    assert late.status_code == 400 and late.json()["code"] == "signature_deadline_invalid"
    malformed = device.client.post(
        f"/api/v1/recoveries/{recovery_id}/recovery-code",
        {"deadline": typed["message"]["deadline"], "signature": "0x" + "zz" * 65},
        format="json",
    )
    assert malformed.status_code == 400


def test_a_new_code_replaces_the_old_one_on_chain(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice = people["alice"]
    _old_code, old_key, _ = create_code(alice)
    _new_code, new_key, created = create_code(alice)
    assert created["operation"]["label"] == "Replace your recovery code"
    address = alice.account.address
    assert guardian_status(w3, pipeline_chain, address, old_key.address) == [False, False]
    assert guardian_status(w3, pipeline_chain, address, new_key.address) == [True, True]
    assert Guardian.objects.get(address=old_key.address).status == Guardian.Status.REMOVED
    current = alice.client.get("/api/v1/recovery-codes").json()["recovery_code"]
    assert current["address"] == new_key.address

    # The old code no longer recovers: its address guards nothing.
    device = Recovery()
    started = device.start("alice")
    refused = start_with_code(device, started.json()["id"], old_key)
    assert refused.status_code == 403 and refused.json()["code"] == "recovery_code_mismatch"


def test_a_revoked_code_no_longer_recovers(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, bob = people["alice"], people["bob"]
    make_guardian(alice, bob)
    _code, key, _ = create_code(alice)
    revoked = alice.client.delete("/api/v1/recovery-codes")
    assert revoked.status_code == 202, revoked.content
    assert alice.approve(revoked.json()["operation"]) == Status.CONFIRMED
    assert guardian_status(w3, pipeline_chain, alice.account.address, key.address) == [False, False]
    assert alice.client.get("/api/v1/recovery-codes").json()["recovery_code"] is None
    assert AuditEvent.objects.filter(details__action="recovery_code_revoked").exists()
    again = alice.client.delete("/api/v1/recovery-codes")
    assert again.status_code == 404 and again.json()["code"] == "recovery_code_not_found"

    device = Recovery()
    started = device.start("alice")  # Bob still guards Alice
    assert started.status_code == 201, started.content
    refused = start_with_code(device, started.json()["id"], key)
    assert refused.status_code == 404 and refused.json()["code"] == "recovery_code_not_found"


def test_a_pending_recovery_blocks_a_new_code(people: dict[str, Person]) -> None:
    alice = people["alice"]
    create_code(alice)
    assert Recovery().start("alice").status_code == 201
    key = key_of(new_code())
    options = alice.post("/api/v1/recovery-codes/options", {"address": key.address})
    typed = options.json()["typed_data"]
    refused = alice.post(
        "/api/v1/recovery-codes",
        {
            "address": key.address,
            "deadline": typed["message"]["deadline"],
            "signature": sign(key, typed),
        },
    )
    assert refused.status_code == 409 and refused.json()["code"] == "recovery_pending"
    assert not Guardian.objects.filter(address=key.address).exists()


def test_a_creation_signed_by_another_key_is_refused(people: dict[str, Person]) -> None:
    alice = people["alice"]
    key = key_of(new_code())
    typed = alice.post("/api/v1/recovery-codes/options", {"address": key.address}).json()
    refused = alice.post(
        "/api/v1/recovery-codes",
        {
            "address": key.address,
            "deadline": typed["typed_data"]["message"]["deadline"],
            "signature": sign(key_of(new_code()), typed["typed_data"]),
        },
    )
    assert refused.status_code == 403 and refused.json()["code"] == "recovery_code_mismatch"
    assert not Guardian.objects.filter(account=alice.account).exists()


def test_a_spent_relayer_budget_refuses_and_the_request_waits(
    people: dict[str, Person], settings: Any
) -> None:
    _code, key, _ = create_code(people["alice"])
    device = Recovery()
    recovery_id = device.start("alice").json()["id"]
    settings.CHAIN_RELAYER_GAS_PER_HOUR = 1
    refused = start_with_code(device, recovery_id, key)
    assert refused.status_code == 429 and refused.json()["code"] == "budget_exhausted"
    request = RecoveryRequest.objects.get()
    assert request.status == RecoveryRequest.Status.PENDING_APPROVAL
    assert request.initiate_operation is None
    settings.CHAIN_RELAYER_GAS_PER_HOUR = 10**12
    settings.CHAIN_RELAYER_GAS_PER_DAY = 10**12
    assert start_with_code(device, recovery_id, key).status_code == 201


def test_unknown_user_or_request(people: dict[str, Person]) -> None:
    device = Recovery()
    unknown = device.client.post(
        "/api/v1/recoveries/options", {"username": "nobody"}, format="json"
    )
    assert unknown.status_code == 404 and unknown.json()["code"] == "account_not_found"
    missing = device.client.get(f"/api/v1/recoveries/{uuid.uuid4()}/recovery-code")
    assert missing.status_code == 404 and missing.json()["code"] == "recovery_not_found"
    # An account without a code: a recovery opened through a guardian has nothing to sign.
    make_guardian(people["alice"], people["bob"])
    started = device.start("alice")
    none = device.client.get(f"/api/v1/recoveries/{started.json()['id']}/recovery-code")
    assert none.status_code == 404 and none.json()["code"] == "recovery_code_not_found"


def test_a_code_never_approved_is_dropped_when_its_operation_expires(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice = people["alice"]
    key = key_of(new_code())
    typed = alice.post("/api/v1/recovery-codes/options", {"address": key.address}).json()
    typed = typed["typed_data"]
    created = alice.post(
        "/api/v1/recovery-codes",
        {
            "address": key.address,
            "deadline": typed["message"]["deadline"],
            "signature": sign(key, typed),
        },
    )
    assert created.status_code == 201, created.content
    ChainOperation.objects.filter(pk=created.json()["operation"]["id"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert expire_operations() == 1
    assert Guardian.objects.get(address=key.address).status == Guardian.Status.REMOVED
    assert alice.client.get("/api/v1/recovery-codes").json()["recovery_code"] is None
    assert guardian_status(w3, pipeline_chain, alice.account.address, key.address) == [
        False,
        False,
    ]


def initiate_outside_the_portal(
    w3: Web3, chain: dict[str, str], request: RecoveryRequest, key: LocalAccount
) -> None:
    """Someone with the code sends initializeRecoveryWithSignature of the request's data from
    their own funded address."""
    executor = chain["GuardianExecutor"]
    data = bytes(request.recovery_data)
    deadline = int(w3.eth.get_block("latest")["timestamp"]) + 3600
    nonce = contract(w3, "GuardianExecutor", executor).functions.guardianNonces(key.address).call()
    typed = recovery_calls.initialize_recovery_typed_data(
        executor=executor,
        chain_id=w3.eth.chain_id,
        account=request.account.address,
        guardian=key.address,
        recovery_type=recovery_calls.RecoveryType.PASSKEY,
        data=data,
        nonce=nonce,
        deadline=deadline,
    )
    outsider = Sender(w3=w3, account=account_from_key(ANVIL_KEYS[3]))
    outsider.send(
        to=executor,
        data=recovery_calls.initialize_recovery_with_signature(
            account=request.account.address,
            recovery_type=recovery_calls.RecoveryType.PASSKEY,
            data=data,
            guardian=key.address,
            deadline=deadline,
            signature=bytes.fromhex(sign(key, typed)[2:]),
        ),
        gas=1_000_000,
    )


def test_a_recovery_started_on_chain_after_it_expired_is_shown_and_can_be_cancelled(
    people: dict[str, Person], anvil: devnet.Anvil, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    """Whoever holds the code (or a guardian's signature) can start a recovery on chain without
    the portal: an expired request whose data is initiated again is open again, visibly."""
    alice = people["alice"]
    alice.user.email = "alice@example.org"
    alice.user.save()
    _code, key, _ = create_code(alice)
    device = Recovery()
    recovery_id = device.start("alice").json()["id"]
    operation = start_with_code(device, recovery_id, key).json()["operation"]
    assert advance(operation["id"], until={Status.CONFIRMED, Status.FAILED}) == Status.CONFIRMED
    index_chain()
    move_chain_time(anvil, 3 * DAY)
    assert run_deadlines().expired == 1
    request = RecoveryRequest.objects.get()
    assert (request.status, request.end_reason) == ("expired", "not_finalized_in_time")

    # The code's holder starts it again on chain, sending the transaction themselves, once the
    # chain allows a new request (strictly after the previous one's validity).
    move_chain_time(anvil, 60)
    initiate_outside_the_portal(w3, pipeline_chain, request, key)
    index_chain()
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.INITIATED and request.ended_at is None
    assert request.completes_at is not None
    assert any("reached the chain late" in m.subject for m in mail.outbox)
    assert AuditEvent.objects.filter(
        kind=AuditEvent.Kind.RECOVERY_STARTED, details__late=True
    ).exists()
    shown = device.client.get(f"/api/v1/recoveries/{recovery_id}").json()
    assert shown["status"] == "initiated"
    alice.client.force_login(alice.user)
    assert "Cancel this recovery" in alice.client.get("/account").content.decode()

    discarded = alice.post(f"/api/v1/recoveries/{recovery_id}/discard")
    assert discarded.status_code == 202, discarded.content
    assert alice.approve(discarded.json()["operation"]) == Status.CONFIRMED
    request.refresh_from_db()
    assert (request.status, request.end_reason) == ("discarded", "discarded_by_owner")
    index_chain()  # indexing again changes nothing
    request.refresh_from_db()
    assert request.status == RecoveryRequest.Status.DISCARDED


def test_a_request_that_expired_unapproved_then_started_on_chain_supersedes_a_newer_one(
    people: dict[str, Person], w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice = people["alice"]
    _code, key, _ = create_code(alice)
    first_id = Recovery().start("alice").json()["id"]
    RecoveryRequest.objects.filter(public_id=first_id).update(
        approval_deadline=timezone.now() - timedelta(seconds=1)
    )
    assert run_deadlines().expired == 1
    second = Recovery().start("alice")
    assert second.status_code == 201, second.content

    initiate_outside_the_portal(
        w3, pipeline_chain, RecoveryRequest.objects.get(public_id=first_id), key
    )
    index_chain()
    first = RecoveryRequest.objects.get(public_id=first_id)
    assert first.status == RecoveryRequest.Status.INITIATED and first.end_reason == ""
    newer = RecoveryRequest.objects.get(public_id=second.json()["id"])
    assert (newer.status, newer.end_reason) == ("discarded", "superseded_on_chain")
    assert Guardian.objects.get(address=key.address).used_at is not None
