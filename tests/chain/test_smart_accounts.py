"""Every account on chain: sign-up deploys a smart account holding the sign-up passkey, and adding
or deleting a passkey later is a change on chain approved with a passkey the person already has."""

from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient
from web3 import Web3

from accounts.models import SmartAccount, User
from accounts.smart_accounts import chain_origin
from chain.client import contract
from chain.devtools.authenticator import SoftAuthenticator
from chain.indexer import index_chain
from chain.models import ChainOperation
from chain.transitions import transition
from passkeys.models import Passkey
from passkeys.onchain import ADD_PASSKEY, REMOVE_PASSKEY
from tests.chain.conftest import advance

Status = ChainOperation.Status


def settle(operation_id: int) -> ChainOperation:
    """What the worker does for an operation, run here: submit it and track it to the end."""
    advance(operation_id, until={Status.CONFIRMED, Status.FAILED})
    return ChainOperation.objects.get(pk=operation_id)


def deployment_id(account: SmartAccount) -> int:
    assert account.deployment_id is not None
    return account.deployment_id


class Person:
    def __init__(self, client: APIClient, authenticator: SoftAuthenticator, body: dict[str, Any]):
        self.client = client
        self.authenticator = authenticator
        self.headers = {"Authorization": f"Bearer {body['token']}"}
        self.user = User.objects.get(pk=body["user"]["id"])

    def post(self, url: str, body: Any = None) -> Any:
        return self.client.post(url, body or {}, format="json", headers=self.headers)

    def approve(self, operation: ChainOperation, *, with_credential: bytes | None = None) -> Any:
        options = self.post(f"/api/v1/operations/{operation.pk}/options").json()
        credential = self.authenticator.get(options["publicKey"], credential_id=with_credential)
        return self.post(f"/api/v1/operations/{operation.pk}/sign", {"credential": credential})

    def confirm_with(self, authenticator: SoftAuthenticator) -> None:
        """Confirm with another passkey (sudo mode): the token is then held by that one, and
        survives the deletion of the passkey it signed in with."""
        options = self.post("/api/v1/auth/reauth/options").json()
        response = self.post(
            "/api/v1/auth/reauth/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.get(options["publicKey"]),
            },
        )
        assert response.status_code == 200, response.content

    def add_passkey(self, authenticator: SoftAuthenticator) -> Passkey:
        options = self.post("/api/v1/passkeys/register/options").json()
        response = self.post(
            "/api/v1/passkeys/register/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.create(options["publicKey"]),
            },
        )
        assert response.status_code == 201, response.content
        assert response.json()["onchain"] == "pending"
        return Passkey.objects.get(pk=response.json()["id"])


@pytest.fixture
def sign_up_on_chain(pipeline_chain: dict[str, str]) -> Any:
    def _sign_up(username: str) -> Person:
        client = APIClient(REMOTE_ADDR="203.0.113.9")
        authenticator = SoftAuthenticator()
        options = client.post(
            "/api/v1/auth/register/options", {"username": username}, format="json"
        ).json()
        response = client.post(
            "/api/v1/auth/register/verify",
            {
                "ceremony_id": options["ceremony_id"],
                "credential": authenticator.create(options["publicKey"]),
            },
            format="json",
        )
        assert response.status_code == 201, response.content
        return Person(client, authenticator, response.json())

    return _sign_up


@pytest.fixture
def deployed(sign_up_on_chain: Any) -> Any:
    """A person whose account is deployed and indexed: (person, account, sign-up passkey)."""

    def _deployed(username: str = "alice") -> tuple[Person, SmartAccount, Passkey]:
        person = sign_up_on_chain(username)
        account = SmartAccount.objects.get(user=person.user)
        settle(deployment_id(account))
        index_chain()
        return person, account, Passkey.objects.get(user=person.user)

    return _deployed


def key_on_chain(
    w3: Web3, addresses: dict[str, str], account: str, passkey: Passkey
) -> list[bytes]:
    validator = contract(w3, "WebAuthnValidator", addresses["WebAuthnValidator"])
    key = validator.functions.getAccountKey(
        chain_origin(), bytes(passkey.credential_id), account
    ).call()
    return [bytes(part) for part in key]


def test_sign_up_opens_and_deploys_the_account(
    sign_up_on_chain: Any, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice = sign_up_on_chain("alice")
    account = SmartAccount.objects.get(user=alice.user)

    assert account.status == SmartAccount.Status.DEPLOYING
    assert Web3.is_checksum_address(account.address)
    assert w3.eth.get_code(Web3.to_checksum_address(account.address)) == b""
    factory = contract(w3, "MSAFactory", pipeline_chain["MSAFactory"])
    predicted = factory.functions.predictAccountAddress(
        bytes.fromhex(account.salt[2:]), bytes(account.init_data)
    ).call()
    assert predicted == account.address

    deployment = settle(deployment_id(account))

    assert deployment.status == Status.CONFIRMED
    account.refresh_from_db()
    assert account.status == SmartAccount.Status.DEPLOYED
    assert w3.eth.get_code(Web3.to_checksum_address(account.address)) != b""
    passkey = Passkey.objects.get(user=alice.user)
    assert key_on_chain(w3, pipeline_chain, account.address, passkey) != [bytes(32), bytes(32)]
    # Session keys (a validator) and guardians (an executor) need no installation later.
    msa = contract(w3, "ModularSmartAccount", account.address)
    assert msa.functions.isModuleInstalled(1, pipeline_chain["SessionKeyValidator"], b"").call()
    assert msa.functions.isModuleInstalled(2, pipeline_chain["GuardianExecutor"], b"").call()
    index_chain()
    passkey.refresh_from_db()
    assert passkey.onchain == Passkey.OnChain.ACTIVE


def test_a_second_passkey_is_approved_by_the_first_and_both_are_on_chain(
    deployed: Any, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, account, first = deployed()

    second = alice.add_passkey(SoftAuthenticator())
    operation = ChainOperation.objects.get(kind=ADD_PASSKEY)
    assert operation.status == Status.AWAITING_SIGNATURE
    assert operation.details["passkey_id"] == second.pk

    signed = alice.approve(operation, with_credential=bytes(first.credential_id))
    assert signed.status_code == 200, signed.content
    assert settle(operation.pk).status == Status.CONFIRMED
    index_chain()

    second.refresh_from_db()
    assert second.onchain == Passkey.OnChain.ACTIVE
    for passkey in (first, second):
        assert key_on_chain(w3, pipeline_chain, account.address, passkey) != [bytes(32)] * 2


def test_a_passkey_added_while_deploying_is_queued_once_deployed(
    sign_up_on_chain: Any, pipeline_chain: dict[str, str]
) -> None:
    alice = sign_up_on_chain("alice")
    account = SmartAccount.objects.get(user=alice.user)
    second = alice.add_passkey(SoftAuthenticator())
    assert not ChainOperation.objects.filter(kind=ADD_PASSKEY).exists()

    settle(deployment_id(account))

    operation = ChainOperation.objects.get(kind=ADD_PASSKEY)
    assert operation.details["passkey_id"] == second.pk
    assert operation.status == Status.AWAITING_SIGNATURE


def test_deleting_a_passkey_removes_it_on_chain(
    deployed: Any, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, account, first = deployed()
    helper = SoftAuthenticator()
    second = alice.add_passkey(helper)
    add = ChainOperation.objects.get(kind=ADD_PASSKEY)
    alice.approve(add, with_credential=bytes(first.credential_id))
    settle(add.pk)
    index_chain()
    alice.confirm_with(helper)

    response = alice.client.delete(f"/api/v1/passkeys/{first.pk}", headers=alice.headers)

    assert response.status_code == 204
    removal = ChainOperation.objects.get(kind=REMOVE_PASSKEY)
    alice.authenticator = helper
    assert alice.approve(removal, with_credential=bytes(second.credential_id)).status_code == 200
    assert settle(removal.pk).status == Status.CONFIRMED
    assert key_on_chain(w3, pipeline_chain, account.address, first) == [bytes(32)] * 2
    assert key_on_chain(w3, pipeline_chain, account.address, second) != [bytes(32)] * 2


def test_the_last_passkey_on_chain_cannot_be_removed(
    deployed: Any, pipeline_chain: dict[str, str]
) -> None:
    alice, _, first = deployed()
    alice.add_passkey(SoftAuthenticator())  # added, but not approved: pending on chain

    response = alice.client.delete(f"/api/v1/passkeys/{first.pk}", headers=alice.headers)

    assert response.status_code == 409
    assert response.json()["code"] == "last_onchain_passkey"
    assert Passkey.objects.filter(pk=first.pk).exists()
    assert not ChainOperation.objects.filter(kind=REMOVE_PASSKEY).exists()


def test_failed_deployments_are_visible_and_queued_again(
    sign_up_on_chain: Any, pipeline_chain: dict[str, str]
) -> None:
    alice = sign_up_on_chain("alice")
    account = SmartAccount.objects.get(user=alice.user)
    transition(operation_id=deployment_id(account), to=Status.FAILED, last_error="test")
    account.refresh_from_db()
    assert account.status == SmartAccount.Status.FAILED

    call_command("redeployaccounts")

    account.refresh_from_db()
    assert account.status == SmartAccount.Status.DEPLOYING
    retry = ChainOperation.objects.get(pk=deployment_id(account))
    assert retry.details == {"attempt": 2}
    assert settle(retry.pk).status == Status.CONFIRMED
    account.refresh_from_db()
    assert account.status == SmartAccount.Status.DEPLOYED


def test_users_who_signed_up_without_a_chain_get_an_account_later(
    api_client: APIClient, sign_up: Any, pipeline_chain: dict[str, str], settings: Any
) -> None:
    from chain.models import Deployment

    saved = list(Deployment.objects.values("chain_id", "name", "address", "code_hash"))
    Deployment.objects.all().delete()
    sign_up("bob")
    assert not SmartAccount.objects.exists()
    Deployment.objects.bulk_create([Deployment(**row) for row in saved])

    call_command("openaccounts")

    account = SmartAccount.objects.get(user__username="bob")
    assert settle(deployment_id(account)).status == Status.CONFIRMED


def test_an_unreachable_chain_refuses_the_change_and_writes_nothing(
    sign_up_on_chain: Any, pipeline_chain: dict[str, str], settings: Any
) -> None:
    from chain.devtools.devnet import free_port

    alice = sign_up_on_chain("alice")
    account = SmartAccount.objects.get(user=alice.user)
    settle(deployment_id(account))
    settings.CHAIN_RPC_URL = f"http://127.0.0.1:{free_port()}"
    options = alice.post("/api/v1/passkeys/register/options").json()

    response = alice.post(
        "/api/v1/passkeys/register/verify",
        {
            "ceremony_id": options["ceremony_id"],
            "credential": SoftAuthenticator().create(options["publicKey"]),
        },
    )

    assert response.status_code == 503
    assert response.json()["code"] == "chain_unavailable"
    assert Passkey.objects.filter(user=alice.user).count() == 1
    assert not ChainOperation.objects.filter(kind=ADD_PASSKEY).exists()


def test_approvals_of_operations_are_audited(deployed: Any, pipeline_chain: dict[str, str]) -> None:
    from accounts.models import AuditEvent

    alice, _, _ = deployed()
    alice.add_passkey(SoftAuthenticator())
    operation = ChainOperation.objects.get(kind=ADD_PASSKEY)
    options = alice.post(f"/api/v1/operations/{operation.pk}/options").json()
    forged = alice.authenticator.get(options["publicKey"], tamper_signature=True)
    assert (
        alice.post(f"/api/v1/operations/{operation.pk}/sign", {"credential": forged}).status_code
        == 400
    )

    assert alice.approve(operation).status_code == 200

    refused = AuditEvent.objects.get(kind="operation_refused")
    assert refused.details == {"operation_id": operation.pk, "reason": "invalid_signature"}
    approved = AuditEvent.objects.get(kind="operation_approved")
    assert approved.details["operation_id"] == operation.pk
    assert approved.details["operation_kind"] == "add_passkey"


def test_an_expired_approval_can_be_asked_for_again(
    deployed: Any, pipeline_chain: dict[str, str]
) -> None:
    alice, _, _ = deployed()
    second = alice.add_passkey(SoftAuthenticator())
    first_try = ChainOperation.objects.get(kind=ADD_PASSKEY)
    not_yet = alice.post(f"/api/v1/operations/{first_try.pk}/retry")
    assert not_yet.status_code == 409
    assert not_yet.json()["code"] == "operation_not_retryable"
    transition(operation_id=first_try.pk, to=Status.EXPIRED)

    response = alice.post(f"/api/v1/operations/{first_try.pk}/retry")

    assert response.status_code == 201, response.content
    assert response.json()["passkey_id"] == second.pk
    assert response.json()["status"] == "awaiting_signature"
    again = alice.post(f"/api/v1/operations/{first_try.pk}/retry")
    assert again.json()["code"] == "operation_superseded"
    retried = ChainOperation.objects.get(pk=response.json()["id"])
    assert alice.approve(retried).status_code == 200
    assert settle(retried.pk).status == Status.CONFIRMED
    index_chain()
    second.refresh_from_db()
    assert second.onchain == Passkey.OnChain.ACTIVE


def test_a_removal_can_be_asked_for_again_after_the_passkey_is_deleted(
    deployed: Any, w3: Web3, pipeline_chain: dict[str, str]
) -> None:
    alice, _, first = deployed()
    helper = SoftAuthenticator()
    alice.add_passkey(helper)
    add = ChainOperation.objects.get(kind=ADD_PASSKEY)
    alice.approve(add, with_credential=bytes(first.credential_id))
    settle(add.pk)
    index_chain()
    alice.confirm_with(helper)
    alice.client.delete(f"/api/v1/passkeys/{first.pk}", headers=alice.headers)
    removal = ChainOperation.objects.get(kind=REMOVE_PASSKEY)
    transition(operation_id=removal.pk, to=Status.EXPIRED)

    response = alice.post(f"/api/v1/operations/{removal.pk}/retry")

    assert response.status_code == 201
    retried = ChainOperation.objects.get(pk=response.json()["id"])
    assert retried.kind == REMOVE_PASSKEY
    assert retried.details == removal.details
    assert user_call(retried) == user_call(removal)


def user_call(operation: ChainOperation) -> str:
    assert operation.user_operation is not None
    return str(operation.user_operation["callData"])


def test_nobody_else_can_retry_an_operation(
    sign_up_on_chain: Any, pipeline_chain: dict[str, str]
) -> None:
    alice = sign_up_on_chain("alice")
    bob = sign_up_on_chain("bob")
    account = SmartAccount.objects.get(user=alice.user)
    settle(deployment_id(account))
    index_chain()
    alice.add_passkey(SoftAuthenticator())
    operation = ChainOperation.objects.get(kind=ADD_PASSKEY)
    transition(operation_id=operation.pk, to=Status.EXPIRED)

    assert bob.post(f"/api/v1/operations/{operation.pk}/retry").status_code == 404
    assert alice.post(f"/api/v1/operations/{account.deployment_id}/retry").status_code == 409
