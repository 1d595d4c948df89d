"""Approving an operation with a passkey: every refusal is a 4xx and leaves the operation as it
was (still waiting for a signature, same user operation, nothing queued)."""

from datetime import timedelta
from typing import Any

import pytest
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from chain.devtools.authenticator import SoftAuthenticator
from chain.models import ChainOperation
from passkeys.approvals import request_approval
from passkeys.models import Ceremony, Passkey
from tests.chain.conftest import PipelineKit

pytestmark = [pytest.mark.chain, pytest.mark.django_db(transaction=True)]

Status = ChainOperation.Status


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def snapshot(operation: ChainOperation) -> tuple[Any, ...]:
    operation.refresh_from_db()
    return (
        operation.status,
        operation.user_operation,
        operation.user_op_hash,
        bytes(operation.tx_data),
        operation.signed_at,
        operation.updated_at,
    )


def new_operation(kit: PipelineKit, user: Any, account: Any, key: str) -> ChainOperation:
    return request_approval(
        user=user,
        account=account,
        kind="add_passkey",
        label="A test operation",
        call_data=kit.noop_call(),
        idempotency_key=key,
        details={},
    )


def options_for(client: APIClient, operation: ChainOperation) -> dict[str, Any]:
    response = client.post(f"/api/v1/operations/{operation.pk}/options")
    assert response.status_code == 200, response.content
    return dict(response.json()["publicKey"])


def sign(client: APIClient, operation: ChainOperation, credential: Any) -> Any:
    return client.post(
        f"/api/v1/operations/{operation.pk}/sign", {"credential": credential}, format="json"
    )


@pytest.fixture
def person(pipeline_kit: PipelineKit) -> tuple[Any, Any, Any]:
    return pipeline_kit.deployed_account("rosa")


def test_a_signature_for_another_operation_is_refused(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    target = new_operation(pipeline_kit, user, account, "target")
    other = new_operation(pipeline_kit, user, account, "other")
    client = client_for(user)
    before = snapshot(target)
    options_for(client, target)
    credential = pipeline_kit.authenticator.get(options_for(client, other))
    response = sign(client, target, credential)
    assert response.status_code == 400
    assert response.json()["code"] == "challenge_mismatch"
    assert snapshot(target) == before
    # The assertion still approves the operation it was made for.
    assert sign(client, other, credential).status_code == 200


def test_an_expired_operation_is_refused_and_marked_expired(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    operation = new_operation(pipeline_kit, user, account, "late")
    client = client_for(user)
    credential = pipeline_kit.authenticator.get(options_for(client, operation))
    ChainOperation.objects.filter(pk=operation.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    response = sign(client, operation, credential)
    assert response.status_code == 410
    assert response.json()["code"] == "operation_expired"
    operation.refresh_from_db()
    assert operation.status == Status.EXPIRED
    assert operation.signed_at is None and operation.relayer_nonce is None
    again = client.post(f"/api/v1/operations/{operation.pk}/options")
    assert again.status_code == 410


def test_another_users_passkey_is_refused(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    mallory, mallory_passkey, _mallory_account = pipeline_kit.deployed_account("mallory")
    operation = new_operation(pipeline_kit, user, account, "target")
    before = snapshot(operation)
    options = options_for(client_for(user), operation)
    forged = pipeline_kit.authenticator.get(
        options, credential_id=bytes(mallory_passkey.credential_id)
    )
    response = sign(client_for(user), operation, forged)
    assert response.status_code == 400
    assert response.json()["code"] == "credential_not_allowed"
    assert snapshot(operation) == before
    # Mallory cannot even see the operation.
    assert sign(client_for(mallory), operation, forged).status_code == 404
    assert client_for(mallory).get(f"/api/v1/operations/{operation.pk}").status_code == 404
    assert snapshot(operation) == before


@pytest.mark.parametrize(
    "credential",
    [
        "not an object",
        {},
        {"id": "x", "rawId": "y", "type": "public-key", "response": {}},
        "TAMPERED",
    ],
)
def test_a_malformed_or_tampered_credential_is_refused(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any], credential: Any
) -> None:
    user, _passkey, account = person
    operation = new_operation(pipeline_kit, user, account, "target")
    client = client_for(user)
    before = snapshot(operation)
    if credential == "TAMPERED":
        credential = pipeline_kit.authenticator.get(
            options_for(client, operation), tamper_signature=True
        )
    response = sign(client, operation, credential)
    assert response.status_code == 400, response.content
    assert snapshot(operation) == before


def test_a_passkey_not_yet_on_chain_cannot_approve(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    pending = pipeline_kit.passkey(user)
    operation = new_operation(pipeline_kit, user, account, "target")
    before = snapshot(operation)
    client = client_for(user)
    options = options_for(client, operation)
    credential = pipeline_kit.authenticator.get(options, credential_id=bytes(pending.credential_id))
    response = sign(client, operation, credential)
    assert response.status_code == 400
    assert response.json()["code"] == "passkey_not_on_chain"
    assert snapshot(operation) == before


@override_settings(PORTAL_RELATED_ORIGINS=["https://other.example"])
def test_a_related_origin_cannot_approve_what_the_chain_binds_to_the_portal_origin(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    operation = new_operation(pipeline_kit, user, account, "target")
    before = snapshot(operation)
    client = client_for(user)
    credential = pipeline_kit.authenticator.get(
        options_for(client, operation), origin="https://other.example"
    )
    response = sign(client, operation, credential)
    assert response.status_code == 400
    assert response.json()["code"] == "origin_not_on_chain"
    assert snapshot(operation) == before


def test_after_a_refusal_fresh_options_let_the_right_passkey_approve(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    user, _passkey, account = person
    operation = new_operation(pipeline_kit, user, account, "target")
    client = client_for(user)
    first = options_for(client, operation)
    bad = pipeline_kit.authenticator.get(first, tamper_signature=True)
    assert sign(client, operation, bad).status_code == 400
    # The ceremony was used up by the refused attempt; reusing it is a conflict.
    good_on_old = pipeline_kit.authenticator.get(first)
    assert sign(client, operation, good_on_old).status_code == 409
    old_ceremony = Ceremony.objects.filter(operation=operation).latest("pk")
    fresh = options_for(client, operation)
    assert fresh["challenge"] == first["challenge"]
    assert Ceremony.objects.filter(operation=operation).latest("pk") != old_ceremony
    response = sign(client, operation, pipeline_kit.authenticator.get(fresh))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "signed"
    # Signed: neither options nor a second signature are accepted.
    assert client.post(f"/api/v1/operations/{operation.pk}/options").status_code == 409
    again = sign(client, operation, pipeline_kit.authenticator.get(fresh))
    assert again.status_code == 409
    assert again.json()["code"] == "operation_not_awaiting_signature"


def test_a_software_authenticator_of_someone_else_with_the_same_user_handle_fails(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any]
) -> None:
    """A credential id the portal has never seen."""
    user, _passkey, account = person
    stranger = SoftAuthenticator()
    operation = new_operation(pipeline_kit, user, account, "target")
    before = snapshot(operation)
    client = client_for(user)
    options = options_for(client, operation)
    stranger.create({"user": {"id": "AAAA"}, "challenge": options["challenge"]})
    credential = stranger.get({**options, "allowCredentials": []})
    response = sign(client, operation, credential)
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_credential"
    assert snapshot(operation) == before
    assert Passkey.objects.filter(user=user).count() == 1


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_client_data_that_is_not_utf8_is_refused_and_changes_nothing(
    pipeline_kit: PipelineKit, person: tuple[Any, Any, Any], encoding: str
) -> None:
    user, _passkey, account = person
    operation = new_operation(pipeline_kit, user, account, "target")
    before = snapshot(operation)
    client = client_for(user)
    options = options_for(client, operation)
    pipeline_kit.authenticator.client_data_encoding = encoding
    try:
        credential = pipeline_kit.authenticator.get(options)
    finally:
        pipeline_kit.authenticator.client_data_encoding = "utf-8"

    response = sign(client, operation, credential)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "client_data_not_utf8"
    assert snapshot(operation) == before
