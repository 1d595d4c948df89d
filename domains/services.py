"""The domain watch's writes: running checks, baselines, alerts (the flip model), incidents, the
lockdown, and the notifications they send."""

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.services import record_event
from domains import rules, selectors
from domains.models import (
    Alert,
    Baseline,
    Check,
    ExpectedChange,
    Incident,
    IncidentLogEntry,
    Lockdown,
    Observation,
    Severity,
    Signal,
    WatchedDomain,
)
from domains.probes import PROBES, ProbeContext
from domains.probes.net import ProbeError
from domains.runbooks import checklist_for
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError

logger = logging.getLogger(__name__)

NOTIFY_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
NEEDS_BASELINE = (
    Signal.RDAP,
    Signal.DNS,
    Signal.TLS,
    Signal.CT,
    Signal.CONTENT,
    Signal.WELLKNOWN,
)
WATCH_LOCK = "domains:watch-running"


def normalise_name(name: str) -> str:
    return name.strip().lower().rstrip(".")


# --- watched domains ---------------------------------------------------------------------------


def sync_watched_domains() -> None:
    """DOMAINS_WATCH's domains are watched (and those added in the console stay)."""
    for name in settings.DOMAINS_WATCH:
        WatchedDomain.objects.update_or_create(
            name=normalise_name(name),
            defaults={"active": True},
            create_defaults={"source": WatchedDomain.Source.SETTINGS},
        )


@transaction.atomic
def add_domain(*, name: str, actor: User, client: ClientInfo | None) -> WatchedDomain:
    from django.core.validators import validate_domain_name

    name = normalise_name(name)
    try:
        validate_domain_name(name)
    except Exception as exc:
        raise PortalError("invalid_domain", "That is not a domain name.") from exc
    if "." not in name:
        raise PortalError("invalid_domain", "That is not a domain name.")
    domain, created = WatchedDomain.objects.get_or_create(
        name=name, defaults={"source": WatchedDomain.Source.CONSOLE}
    )
    if not created and domain.active:
        raise Conflict("domain_already_watched", "That domain is already watched.")
    domain.active = True
    domain.save(update_fields=["active"])
    record_event(
        kind=AuditEvent.Kind.DOMAIN_WATCH_CHANGED,
        user=actor,
        client=client,
        domain=name,
        watched=True,
    )
    return domain


# --- running checks ------------------------------------------------------------------------------


def onchain_domain() -> WatchedDomain | None:
    """The on-chain signal is the portal's, not a domain's: it is shown on PORTAL_RP_ID's domain
    when that is watched, else on the first watched domain."""
    domains = list(selectors.watched_domains())
    return next((d for d in domains if d.name == settings.PORTAL_RP_ID), None) or (
        domains[0] if domains else None
    )


def run_watch(*, signals: list[str] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Run every enabled check of every watched domain once; then mark what has gone stale."""
    if not cache.add(WATCH_LOCK, "1", timeout=max(60, settings.DOMAINS_CHECK_SECONDS)):
        return {"skipped": "another watch run is in progress"}
    try:
        sync_watched_domains()
        wanted = [s for s in selectors.enabled_signals() if signals is None or s in signals]
        ran = 0
        host = onchain_domain()
        for domain in selectors.watched_domains():
            context = ProbeContext(now=now or timezone.now())
            for signal in wanted:
                if signal == Signal.ONCHAIN and domain != host:
                    continue
                if signal == Signal.CT and not settings.DOMAINS_CT_URL:
                    continue
                run_check(domain=domain, signal=signal, context=context)
                ran += 1
        stale = sweep_stale(now=now or timezone.now())
        return {"checks": ran, "stale": stale}
    finally:
        cache.delete(WATCH_LOCK)


def run_check(*, domain: WatchedDomain, signal: str, context: ProbeContext) -> Check:
    check, _ = Check.objects.get_or_create(domain=domain, signal=signal)
    latest = selectors.latest_observation(check)
    context.previous = latest.value if latest and not latest.error else None
    value: dict[str, Any] = {}
    error = ""
    try:
        value = PROBES[signal](domain.name, context)
    except ProbeError as exc:
        error = str(exc)
    except Exception as exc:  # a probe's bug must not stop the other checks
        logger.exception("domain check %s/%s failed", domain.name, signal)
        error = f"internal error: {type(exc).__name__}"
    with transaction.atomic():
        check = Check.objects.select_for_update().get(pk=check.pk)
        now = context.now
        observation = record_observation(check=check, value=value, error=error, now=now)
        check.last_run_at = now
        check.last_error = error
        check.save(update_fields=["last_run_at", "last_error"])
        if not observation.error:
            propose_baseline(check=check, observation=observation)
        evaluate(check=check, now=now)
    return check


def record_observation(
    *, check: Check, value: dict[str, Any], error: str, now: datetime
) -> Observation:
    digest = rules.digest({"value": value, "error": error})
    latest = selectors.latest_observation(check)
    if latest is not None and latest.digest == digest:
        latest.last_seen_at = now
        latest.save(update_fields=["last_seen_at"])
        return latest
    return Observation.objects.create(
        check_ref=check, value=value, error=error, digest=digest, observed_at=now, last_seen_at=now
    )


def propose_baseline(*, check: Check, observation: Observation) -> None:
    """Until an operator approves one, the latest observation is the proposed baseline."""
    if selectors.approved_baseline(check) is not None:
        return
    proposed = selectors.proposed_baseline(check)
    if proposed is None:
        Baseline.objects.create(
            check_ref=check,
            status=Baseline.Status.PROPOSED,
            value=observation.value,
            digest=rules.digest(observation.value),
        )
    elif proposed.digest != rules.digest(observation.value):
        proposed.value = observation.value
        proposed.digest = rules.digest(observation.value)
        proposed.save(update_fields=["value", "digest"])


def _findings(*, check: Check, value: dict[str, Any], now: datetime) -> list[rules.Finding]:
    baseline = selectors.approved_baseline(check)
    base = baseline.value if baseline else None
    if check.signal == Signal.CT:
        tls = check.domain.checks.filter(signal=Signal.TLS).first()
        tls_base = selectors.approved_baseline(tls) if tls else None
        known = (
            {
                c["spki_sha256"]
                for c in tls_base.value.get("certificates", {}).values()
                if "spki_sha256" in c
            }
            if tls_base
            else set()
        )
        return rules.ct(value, base, now, known_spkis=known)
    return rules.RULES[check.signal](value, base, now)  # type: ignore[index]


def evaluate(*, check: Check, now: datetime, close_reason: str = "reverted") -> None:
    """Compare the latest observation with the approved baseline and apply the findings."""
    latest = selectors.latest_observation(check)
    if latest is None:
        return
    if latest.error:
        check.state = Check.State.UNKNOWN
        check.summary = latest.error[:300]
        check.save(update_fields=["state", "summary"])
        # An observation that failed changes nothing about the alerts: no flip on a timeout.
        _touch_open_alerts(check=check, now=now)
        return
    findings = _findings(check=check, value=latest.value, now=now)
    if _apply_expected_changes(check=check, findings=findings, observation=latest, now=now):
        findings = _findings(check=check, value=latest.value, now=now)
    apply_findings(check=check, findings=findings, now=now, close_reason=close_reason)
    worst = max((rules.severity_rank(f.severity) for f in findings), default=0)
    if worst >= rules.severity_rank(Severity.HIGH):
        check.state = Check.State.CRITICAL
    elif worst:
        check.state = Check.State.WARNING
    elif check.signal in NEEDS_BASELINE and selectors.approved_baseline(check) is None:
        check.state = Check.State.UNKNOWN
    else:
        check.state = Check.State.OK
    if findings:
        check.summary = findings[0].summary[:300]
    elif check.state == Check.State.UNKNOWN:
        check.summary = "Waiting for an operator to approve the baseline."
    else:
        check.summary = "As approved."
    check.save(update_fields=["state", "summary"])


def _apply_expected_changes(
    *, check: Check, findings: list[rules.Finding], observation: Observation, now: datetime
) -> bool:
    for finding in findings:
        expected = ExpectedChange.objects.filter(
            domain=check.domain,
            signal=check.signal,
            kind=finding.kind,
            used_at__isnull=True,
            expires_at__gt=now,
        ).order_by("created_at")
        match = next(
            (e for e in expected if rules.canonical(e.value) == rules.canonical(finding.value)),
            None,
        )
        if match is None:
            continue
        match.used_at = now
        match.save(update_fields=["used_at"])
        _approve(
            check=check,
            value=observation.value,
            actor=match.created_by,
            now=now,
            note=f"expected change #{match.pk}",
        )
        record_event(
            kind=AuditEvent.Kind.DOMAIN_BASELINE_APPROVED,
            user=match.created_by,
            client=None,
            domain=check.domain.name,
            signals=[check.signal],
            via="expected_change",
            expected_change=match.pk,
        )
        return True
    return False


def _touch_open_alerts(*, check: Check, now: datetime) -> None:
    for alert in Alert.objects.filter(
        domain=check.domain, signal=check.signal, status=Alert.Status.OPEN
    ):
        _maybe_renotify(alert=alert, now=now)


def apply_findings(
    *, check: Check, findings: list[rules.Finding], now: datetime, close_reason: str = "reverted"
) -> None:
    """The flip model: a finding without an open alert of its fingerprint raises one; an open
    alert of this check whose finding is gone is closed (the change was reverted or approved)."""
    current = set()
    for finding in findings:
        print_ = rules.fingerprint(
            domain=check.domain.name, signal=check.signal, kind=finding.kind, value=finding.value
        )
        current.add(print_)
        alert = Alert.objects.filter(fingerprint=print_, status=Alert.Status.OPEN).first()
        if alert is None:
            raise_alert(check=check, finding=finding, fingerprint=print_, now=now)
        else:
            alert.last_seen = now
            alert.save(update_fields=["last_seen"])
            _maybe_renotify(alert=alert, now=now)
    for alert in Alert.objects.filter(
        domain=check.domain, signal=check.signal, status=Alert.Status.OPEN
    ).exclude(fingerprint__in=current):
        close_alert(alert=alert, reason=close_reason, now=now)


def raise_alert(*, check: Check, finding: rules.Finding, fingerprint: str, now: datetime) -> Alert:
    alert = Alert.objects.create(
        domain=check.domain,
        signal=check.signal,
        kind=finding.kind,
        severity=finding.severity,
        summary=finding.summary[:500],
        value=finding.value if isinstance(finding.value, dict) else {"value": finding.value},
        fingerprint=fingerprint,
        first_seen=now,
        last_seen=now,
    )
    if finding.severity in NOTIFY_SEVERITIES:
        incident = _incident_for(alert=alert, now=now)
        alert.incident = incident
        alert.save(update_fields=["incident"])
        _notify_alert(alert=alert, now=now, event="alert_opened")
        if finding.severity == Severity.CRITICAL and settings.DOMAINS_AUTO_LOCKDOWN:
            set_lockdown(
                enabled=True,
                reason=f"automatic: {alert.kind} on {alert.domain.name}",
                actor=None,
                client=None,
                automatic=True,
            )
    return alert


def close_alert(*, alert: Alert, reason: str, now: datetime) -> None:
    alert.status = Alert.Status.CLOSED
    alert.closed_at = now
    alert.closed_reason = reason
    alert.save(update_fields=["status", "closed_at", "closed_reason"])
    if alert.incident_id is not None:
        IncidentLogEntry.objects.create(
            incident_id=alert.incident_id,
            at=now,
            action="alert_closed",
            note=f"{alert.kind}: closed ({reason}).",
        )


def _maybe_renotify(*, alert: Alert, now: datetime) -> None:
    if alert.severity not in NOTIFY_SEVERITIES or alert.last_notified_at is None:
        return
    if now - alert.last_notified_at >= timedelta(seconds=settings.DOMAINS_RENOTIFY_SECONDS):
        _notify_alert(alert=alert, now=now, event="alert_still_open")


def sweep_stale(*, now: datetime) -> int:
    """A check that has not run for three periods is stale, and says so with an alert (the watch
    watches itself); its next run closes the alert."""
    cutoff = now - 3 * timedelta(seconds=settings.DOMAINS_CHECK_SECONDS)
    stale = 0
    for check in Check.objects.filter(
        domain__active=True, last_run_at__lt=cutoff, signal__in=selectors.enabled_signals()
    ).select_related("domain"):
        with transaction.atomic():
            finding = rules.Finding(
                "check_stale",
                Severity.WARNING,
                check.signal,
                f"The {check.signal} check has not run since "
                f"{check.last_run_at:%Y-%m-%d %H:%M} UTC.",
            )
            print_ = rules.fingerprint(
                domain=check.domain.name,
                signal=check.signal,
                kind="check_stale",
                value=check.signal,
            )
            alert = Alert.objects.filter(fingerprint=print_, status=Alert.Status.OPEN).first()
            if alert is None:
                raise_alert(check=check, finding=finding, fingerprint=print_, now=now)
            else:
                alert.last_seen = now
                alert.save(update_fields=["last_seen"])
            check.state = Check.State.STALE
            check.summary = finding.summary
            check.save(update_fields=["state", "summary"])
        stale += 1
    return stale


# --- baselines -----------------------------------------------------------------------------------


def _approve(
    *, check: Check, value: dict[str, Any], actor: User | None, now: datetime, note: str = ""
) -> Baseline:
    check.baselines.filter(status=Baseline.Status.APPROVED).update(
        status=Baseline.Status.SUPERSEDED
    )
    check.baselines.filter(status=Baseline.Status.PROPOSED).delete()
    return Baseline.objects.create(
        check_ref=check,
        status=Baseline.Status.APPROVED,
        value=value,
        digest=rules.digest(value),
        approved_at=now,
        approved_by=actor,
        created_at=now,
        note=note,
    )


@transaction.atomic
def approve_baseline(
    *,
    domain: WatchedDomain,
    actor: User,
    client: ClientInfo | None,
    signals: list[str] | None = None,
) -> list[str]:
    """Approve each check's latest (successful) observation as its baseline; re-evaluate, so alerts
    the new baseline explains are closed."""
    now = timezone.now()
    approved = []
    for check in Check.objects.select_for_update().filter(domain=domain).order_by("signal"):
        if signals is not None and check.signal not in signals:
            continue
        latest = selectors.latest_observation(check)
        if latest is None or latest.error:
            continue
        _approve(check=check, value=latest.value, actor=actor, now=now)
        approved.append(check.signal)
    if not approved:
        raise Conflict("nothing_to_approve", "No check of this domain has observed anything yet.")
    for check in Check.objects.filter(domain=domain, signal__in=approved):
        evaluate(check=check, now=now, close_reason="baseline_approved")
    record_event(
        kind=AuditEvent.Kind.DOMAIN_BASELINE_APPROVED,
        user=actor,
        client=client,
        domain=domain.name,
        signals=approved,
    )
    return approved


@transaction.atomic
def expect_change(
    *,
    domain: WatchedDomain,
    signal: str,
    kind: str,
    value: Any,
    actor: User,
    client: ClientInfo | None,
    note: str = "",
    valid_for: timedelta = timedelta(days=7),
) -> ExpectedChange:
    """Pre-approve a change: when `signal` finds exactly (kind, value), its observation becomes the
    approved baseline without an alert."""
    if signal not in Signal.values:
        raise PortalError("invalid_signal", "No such signal.")
    if kind not in rules.ALL_KINDS:
        raise PortalError("invalid_kind", "No such alert kind.")
    expected = ExpectedChange.objects.create(
        domain=domain,
        signal=signal,
        kind=kind,
        value=value,
        note=note[:300],
        created_by=actor,
        expires_at=timezone.now() + valid_for,
    )
    record_event(
        kind=AuditEvent.Kind.DOMAIN_CHANGE_EXPECTED,
        user=actor,
        client=client,
        domain=domain.name,
        signal=signal,
        alert_kind=kind,
        value=value,
    )
    return expected


# --- incidents -----------------------------------------------------------------------------------

# The allowed moves of an incident, written once.
INCIDENT_TRANSITIONS: dict[str, frozenset[str]] = {
    Incident.Status.OPEN: frozenset({Incident.Status.ACKNOWLEDGED}),
    Incident.Status.ACKNOWLEDGED: frozenset({Incident.Status.MITIGATING, Incident.Status.RESOLVED}),
    Incident.Status.MITIGATING: frozenset({Incident.Status.RESOLVED}),
    Incident.Status.RESOLVED: frozenset(),
}


def _incident_for(*, alert: Alert, now: datetime) -> Incident:
    """The domain's unresolved incident takes the alert; else a new one opens with the runbook of
    the alert's kind."""
    incident = (
        Incident.objects.select_for_update()
        .filter(domain=alert.domain)
        .exclude(status=Incident.Status.RESOLVED)
        .order_by("-opened_at")
        .first()
    )
    if incident is None:
        incident = Incident.objects.create(
            domain=alert.domain,
            kind=alert.kind,
            severity=alert.severity,
            title=f"{alert.kind.replace('_', ' ')} on {alert.domain.name}",
            checklist=checklist_for(alert.kind),
            opened_at=now,
            updated_at=now,
        )
        IncidentLogEntry.objects.create(
            incident=incident,
            at=now,
            action="opened",
            to_status=incident.status,
            note=alert.summary,
        )
        _notify_incident(incident=incident, action="opened", note=alert.summary)
        return incident
    if rules.severity_rank(alert.severity) > rules.severity_rank(incident.severity):
        incident.severity = alert.severity
    existing = {entry["step"] for entry in incident.checklist}
    incident.checklist = incident.checklist + [
        s for s in checklist_for(alert.kind) if s["step"] not in existing
    ]
    incident.updated_at = now
    incident.save(update_fields=["severity", "checklist", "updated_at"])
    IncidentLogEntry.objects.create(
        incident=incident, at=now, action="alert_added", note=f"{alert.kind}: {alert.summary}"
    )
    return incident


@transaction.atomic
def transition_incident(
    *, incident_id: int, to: str, actor: User, client: ClientInfo | None, note: str = ""
) -> Incident:
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("incident_not_found", "No such incident.")
    if to not in INCIDENT_TRANSITIONS[incident.status]:
        raise Conflict(
            "incident_transition_not_allowed",
            f"An incident that is {incident.status} cannot become {to}.",
        )
    now = timezone.now()
    previous = incident.status
    incident.status = to
    incident.updated_at = now
    if to == Incident.Status.RESOLVED:
        incident.resolved_at = now
    incident.save(update_fields=["status", "updated_at", "resolved_at"])
    IncidentLogEntry.objects.create(
        incident=incident,
        at=now,
        actor=actor,
        action="transition",
        from_status=previous,
        to_status=to,
        note=note[:2000],
    )
    record_event(
        kind=AuditEvent.Kind.INCIDENT_CHANGED,
        user=actor,
        client=client,
        incident=incident.pk,
        domain=incident.domain.name,
        from_status=previous,
        to_status=to,
    )
    _notify_incident(incident=incident, action=f"{previous} → {to}", note=note)
    return incident


@transaction.atomic
def add_incident_note(*, incident_id: int, actor: User, note: str) -> IncidentLogEntry:
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("incident_not_found", "No such incident.")
    if not note.strip():
        raise PortalError("empty_note", "Write something first.")
    incident.updated_at = timezone.now()
    incident.save(update_fields=["updated_at"])
    return IncidentLogEntry.objects.create(
        incident=incident, actor=actor, action="note", note=note.strip()[:2000]
    )


@transaction.atomic
def check_runbook_step(*, incident_id: int, step: int, actor: User) -> Incident:
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise NotFound("incident_not_found", "No such incident.")
    if not 0 <= step < len(incident.checklist):
        raise PortalError("invalid_step", "No such step.")
    if incident.checklist[step]["done"]:
        raise Conflict("step_done", "That step is already done.")
    now = timezone.now()
    checklist = [dict(s) for s in incident.checklist]
    checklist[step].update(done=True, by=actor.username, at=now.isoformat())
    incident.checklist = checklist
    incident.updated_at = now
    incident.save(update_fields=["checklist", "updated_at"])
    IncidentLogEntry.objects.create(
        incident=incident, at=now, actor=actor, action="step_done", note=checklist[step]["step"]
    )
    return incident


# --- lockdown ------------------------------------------------------------------------------------


@transaction.atomic
def set_lockdown(
    *,
    enabled: bool,
    reason: str,
    actor: User | None,
    client: ClientInfo | None,
    automatic: bool = False,
) -> Lockdown:
    """Turn the lockdown on or off. Turning it on tells every signed-up person once; turning on
    what is already on changes nothing."""
    lockdown, _ = Lockdown.objects.select_for_update().get_or_create(pk=1)
    if lockdown.enabled == enabled:
        return lockdown
    if enabled and not reason.strip():
        raise PortalError("reason_required", "Say why the lockdown is turned on.")
    lockdown.enabled = enabled
    lockdown.reason = reason.strip()[:300]
    lockdown.automatic = automatic
    lockdown.changed_at = timezone.now()
    lockdown.changed_by = actor
    lockdown.save()
    record_event(
        kind=AuditEvent.Kind.LOCKDOWN_CHANGED,
        user=actor,
        client=client,
        enabled=enabled,
        reason=lockdown.reason,
        automatic=automatic,
    )
    if enabled:
        transaction.on_commit(
            lambda: _queue("domains.tasks.announce_lockdown", reason=lockdown.reason)
        )
    _notify(
        subject=f"Lockdown {'on' if enabled else 'off'}",
        payload={
            "event": "lockdown_changed",
            "enabled": enabled,
            "reason": lockdown.reason,
            "automatic": automatic,
            "by": actor.username if actor else None,
        },
        body=f"The portal's lockdown is now {'ON' if enabled else 'off'}: {lockdown.reason}",
    )
    return lockdown


# --- notifications -------------------------------------------------------------------------------


def _queue(task_name: str, **kwargs: Any) -> None:
    from domains import tasks

    task = getattr(tasks, task_name.rpartition(".")[2])
    try:
        task.delay(**kwargs)
    except Exception as exc:  # the broker is down: the alert is in the database and the console
        logger.warning("could not queue %s: %s", task_name, exc)


def _notify(*, subject: str, payload: dict[str, Any], body: str) -> None:
    """Email DOMAINS_ALERT_EMAILS and post DOMAINS_WEBHOOK_URL once the transaction commits."""

    def send() -> None:
        if settings.DOMAINS_ALERT_EMAILS:
            _queue(
                "domains.tasks.email_operators",
                subject=f"[domain watch] {subject}",
                message=body,
            )
        if settings.DOMAINS_WEBHOOK_URL:
            _queue("domains.tasks.post_webhook", payload=payload)

    transaction.on_commit(send)


def alert_payload(alert: Alert) -> dict[str, Any]:
    return {
        "id": alert.pk,
        "domain": alert.domain.name,
        "signal": alert.signal,
        "kind": alert.kind,
        "severity": alert.severity,
        "summary": alert.summary,
        "fingerprint": alert.fingerprint,
        "first_seen": alert.first_seen.isoformat(),
        "last_seen": alert.last_seen.isoformat(),
        "status": alert.status,
        "incident": alert.incident_id,
    }


def _notify_alert(*, alert: Alert, now: datetime, event: str) -> None:
    alert.last_notified_at = now
    alert.notifications += 1
    alert.save(update_fields=["last_notified_at", "notifications"])
    again = " (still open)" if event == "alert_still_open" else ""
    _notify(
        subject=f"{alert.severity.upper()} {alert.kind} on {alert.domain.name}{again}",
        payload={"event": event, "alert": alert_payload(alert)},
        body=(
            f"{alert.summary}\n\nSignal: {alert.signal}\n"
            f"First seen: {alert.first_seen:%Y-%m-%d %H:%M} UTC\nFingerprint: {alert.fingerprint}\n"
        ),
    )


def _notify_incident(*, incident: Incident, action: str, note: str) -> None:
    _notify(
        subject=f"Incident #{incident.pk} on {incident.domain.name}: {action}",
        payload={
            "event": "incident_changed",
            "incident": {
                "id": incident.pk,
                "domain": incident.domain.name,
                "kind": incident.kind,
                "severity": incident.severity,
                "status": incident.status,
                "title": incident.title,
            },
            "action": action,
            "note": note,
        },
        body=f"{incident.title}: {action}\n{note}",
    )
