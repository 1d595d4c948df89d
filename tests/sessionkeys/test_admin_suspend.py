"""An operator who sees a bad dapp suspends its sessions in the admin: the relay stops at once,
and the owner is asked to revoke on chain with their passkey."""

from django.test import Client

from accounts.models import AuditEvent
from sessionkeys.models import Session
from tests.sessionkeys.conftest import World


def test_an_operator_suspends_a_session_and_the_owner_revokes_it(
    world: World, admin_client: Client
) -> None:
    session = world.active_session()
    assert world.transfer(session, 1).status_code == 202

    answer = admin_client.post(
        "/admin/sessionkeys/session/",
        {"action": "suspend_and_ask_owner_to_revoke", "_selected_action": [session["id"]]},
        follow=True,
    )
    assert answer.status_code == 200
    assert "waits for" in answer.content.decode()

    refused = world.transfer(session, 1)
    assert (refused.status_code, refused.json()["code"]) == (422, "session_suspended")
    detail = world.client.get(f"/api/v1/sessions/{session['id']}").json()
    assert detail["status"] == "active" and detail["suspended_at"] is not None
    assert AuditEvent.objects.filter(
        user=world.user,
        kind=AuditEvent.Kind.SESSION_REVOKE_REQUESTED,
        details__action="suspended_by_operator",
        details__operator="admin",
    ).exists()

    # The revocation the operator asked for waits for the owner's passkey; approved, it is revoked.
    revocation = Session.objects.get(pk=session["id"]).revoke_operation
    assert revocation is not None and revocation.status == "awaiting_signature"
    world.approve(revocation.pk)
    assert world.client.get(f"/api/v1/sessions/{session['id']}").json()["status"] == "revoked"


def test_suspending_twice_keeps_the_first_time(world: World, admin_client: Client) -> None:
    session = world.active_session()
    for _ in range(2):
        admin_client.post(
            "/admin/sessionkeys/session/",
            {"action": "suspend_and_ask_owner_to_revoke", "_selected_action": [session["id"]]},
        )
    assert (
        AuditEvent.objects.filter(user=world.user, details__action="suspended_by_operator").count()
        == 1
    )
