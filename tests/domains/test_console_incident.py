"""/console/incidents/<id>: the workflow's buttons, the runbook and the log."""

from typing import Any

import pytest
from django.test import Client

from domains.models import Incident, WatchedDomain
from tests.domains.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(world: World, baselined: WatchedDomain, watch: Any) -> Incident:
    world.rdap["status"] = ["pending transfer"]
    watch(["rdap"])
    return Incident.objects.get()


def test_the_incident_page(staff_client: Client, incident: Incident) -> None:
    page = staff_client.get(f"/console/incidents/{incident.pk}").content.decode()
    assert 'id="incident-status">open<' in page
    assert 'id="move-acknowledged"' in page and 'id="move-resolved"' not in page
    assert "Restore the client/server transfer" in page


def test_acknowledge_note_and_step(staff_client: Client, incident: Incident) -> None:
    url = f"/console/incidents/{incident.pk}/action"
    staff_client.post(url, {"action": "transition", "to": "acknowledged", "note": "on it"})
    staff_client.post(url, {"action": "step", "step": "0"})
    staff_client.post(url, {"action": "note", "note": "registrar called back"})

    page = staff_client.get(f"/console/incidents/{incident.pk}").content.decode()

    assert 'id="incident-status">acknowledged<' in page
    log = page.split('id="incident-log"')[1]
    assert "operator: transition open → acknowledged — on it" in log
    assert "operator: step_done" in log and "registrar called back" in log
    assert "done by operator" in page


def test_a_refused_move_says_why(staff_client: Client, incident: Incident) -> None:
    page = staff_client.post(
        f"/console/incidents/{incident.pk}/action",
        {"action": "transition", "to": "resolved"},
        follow=True,
    ).content.decode()
    assert "An incident that is open cannot become resolved." in page
    incident.refresh_from_db()
    assert incident.status == "open"


def test_bad_actions(staff_client: Client, incident: Incident) -> None:
    url = f"/console/incidents/{incident.pk}/action"
    assert (
        "Unknown action." in staff_client.post(url, {"action": "x"}, follow=True).content.decode()
    )
    page = staff_client.post(url, {"action": "step", "step": "abc"}, follow=True).content.decode()
    assert "No such step." in page
    assert (
        staff_client.post(
            "/console/incidents/999/action", {"action": "note", "note": "x"}
        ).status_code
        == 404
    )
    assert staff_client.get("/console/incidents/999").status_code == 404
