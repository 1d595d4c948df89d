"""Incidents group a domain's critical/high alerts: open → acknowledged → mitigating → resolved,
with an append-only log and the runbook of the first alert's kind."""

from typing import Any

import pytest

from accounts.models import AuditEvent
from domains.models import Alert, Incident, IncidentLogEntry, WatchedDomain
from domains.runbooks import RUNBOOKS
from domains.services import add_incident_note, check_runbook_step, transition_incident
from portal.errors import PortalError
from tests.domains.world import World

pytestmark = pytest.mark.django_db


@pytest.fixture
def incident(world: World, baselined: WatchedDomain, watch: Any) -> Incident:
    world.zone.records["NS"] = (3600, ["ns1.attacker.test."])
    watch(["dns"])
    return Incident.objects.get()


def test_a_critical_alert_opens_an_incident_with_its_runbook(incident: Incident) -> None:
    alert = Alert.objects.get()
    assert alert.incident == incident
    assert (incident.kind, incident.severity, incident.status) == (
        "nameservers_changed",
        "critical",
        "open",
    )
    assert [s["step"] for s in incident.checklist] == RUNBOOKS["nameservers_changed"]
    assert [e.action for e in incident.log.all()] == ["opened"]


def test_more_alerts_of_the_domain_join_the_open_incident(
    incident: Incident, world: World, watch: Any
) -> None:
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])
    assert Incident.objects.count() == 1
    incident.refresh_from_db()
    assert incident.alerts.count() == 2
    assert [e.action for e in incident.log.all()] == ["opened", "alert_added"]
    assert len(incident.checklist) > len(RUNBOOKS["nameservers_changed"])


def test_warnings_open_no_incident(world: World, baselined: WatchedDomain, watch: Any) -> None:
    world.zone.records["NS"] = (60, world.zone.records["NS"][1])
    watch(["dns"])
    assert Alert.objects.get().incident is None
    assert Incident.objects.count() == 0


def test_the_workflow_and_its_log(incident: Incident, operator: Any) -> None:
    transition_incident(incident_id=incident.pk, to="acknowledged", actor=operator, client=None)
    transition_incident(
        incident_id=incident.pk, to="mitigating", actor=operator, client=None, note="called"
    )
    check_runbook_step(incident_id=incident.pk, step=0, actor=operator)
    add_incident_note(incident_id=incident.pk, actor=operator, note="registrar reverted it")
    transition_incident(incident_id=incident.pk, to="resolved", actor=operator, client=None)

    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_at is not None
    assert incident.checklist[0]["done"] is True and incident.checklist[0]["by"] == "operator"
    log = [(e.action, e.from_status, e.to_status, e.actor) for e in incident.log.all()]
    assert log == [
        ("opened", "", "open", None),
        ("transition", "open", "acknowledged", operator),
        ("transition", "acknowledged", "mitigating", operator),
        ("step_done", "", "", operator),
        ("note", "", "", operator),
        ("transition", "mitigating", "resolved", operator),
    ]
    assert AuditEvent.objects.filter(kind="incident_changed").count() == 3


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ([], "mitigating"),
        ([], "resolved"),
        (["acknowledged"], "open"),
        (["acknowledged", "resolved"], "mitigating"),
        (["acknowledged", "mitigating"], "acknowledged"),
    ],
)
def test_moves_outside_the_workflow_are_refused(
    incident: Incident, operator: Any, path: list[str], refused: str
) -> None:
    for status in path:
        transition_incident(incident_id=incident.pk, to=status, actor=operator, client=None)
    entries = incident.log.count()
    with pytest.raises(PortalError) as error:
        transition_incident(incident_id=incident.pk, to=refused, actor=operator, client=None)
    assert error.value.code == "incident_transition_not_allowed" and error.value.status_code == 409
    assert incident.log.count() == entries


def test_the_log_is_append_only(incident: Incident) -> None:
    entry = IncidentLogEntry.objects.get()
    entry.note = "rewritten"
    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_a_resolved_incident_is_not_reused(
    incident: Incident, operator: Any, world: World, watch: Any
) -> None:
    transition_incident(incident_id=incident.pk, to="acknowledged", actor=operator, client=None)
    transition_incident(incident_id=incident.pk, to="resolved", actor=operator, client=None)
    world.zone.records["CAA"] = (3600, ['0 issue "rogue.test"'])
    watch(["dns"])
    assert Incident.objects.count() == 2


def test_refusals(incident: Incident, operator: Any) -> None:
    with pytest.raises(PortalError, match="No such incident"):
        transition_incident(incident_id=999, to="acknowledged", actor=operator, client=None)
    with pytest.raises(PortalError) as empty:
        add_incident_note(incident_id=incident.pk, actor=operator, note="  ")
    assert empty.value.code == "empty_note"
    with pytest.raises(PortalError) as bad_step:
        check_runbook_step(incident_id=incident.pk, step=99, actor=operator)
    assert bad_step.value.code == "invalid_step"
    check_runbook_step(incident_id=incident.pk, step=1, actor=operator)
    with pytest.raises(PortalError) as twice:
        check_runbook_step(incident_id=incident.pk, step=1, actor=operator)
    assert twice.value.code == "step_done"
