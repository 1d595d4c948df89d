"""The domain-ownership watch: what is watched, what was seen, what was approved, what was raised.

State changes (an alert's, an incident's, the lockdown's) happen only in domains.services.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Signal(models.TextChoices):
    RDAP = "rdap", "Registration (RDAP)"
    DNS = "dns", "DNS"
    TLS = "tls", "TLS certificate"
    CT = "ct", "Certificate Transparency"
    CONTENT = "content", "Page content"
    WELLKNOWN = "wellknown", "Related origins"
    HSTS = "hsts", "HSTS"
    ONCHAIN = "onchain", "On-chain passkeys"


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    WARNING = "warning", "Warning"


SEVERITY_RANK = {Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class WatchedDomain(models.Model):
    class Source(models.TextChoices):
        SETTINGS = "settings", "DOMAINS_WATCH"
        CONSOLE = "console", "Added in the console"

    name = models.CharField(max_length=253, unique=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Check(models.Model):
    """One signal of one domain, with its current state."""

    class State(models.TextChoices):
        OK = "ok", "OK"
        WARNING = "warning", "Warning"
        CRITICAL = "critical", "Critical"
        UNKNOWN = "unknown", "Unknown"
        STALE = "stale", "Stale"

    domain = models.ForeignKey(WatchedDomain, on_delete=models.CASCADE, related_name="checks")
    signal = models.CharField(max_length=16, choices=Signal.choices)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNKNOWN)
    summary = models.CharField(max_length=300, blank=True)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["domain", "signal"], name="domains_one_check_per_signal"
            )
        ]
        ordering = ["domain__name", "signal"]

    def __str__(self) -> str:
        return f"{self.domain.name}/{self.signal}: {self.state}"


class Observation(models.Model):
    """What a check saw. A run that sees the same as the previous one only moves `last_seen_at`,
    so the history is a list of changes."""

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="observations")
    value = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    error = models.TextField(blank=True)
    observed_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-observed_at", "-id"]
        indexes = [models.Index(fields=["check_ref", "-observed_at"])]

    def __str__(self) -> str:
        return f"{self.check_ref_id} at {self.observed_at:%Y-%m-%d %H:%M}"


class Baseline(models.Model):
    """The value a check is compared with. Proposed by the first run, approved by an operator;
    an approval supersedes the previous approved baseline."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        APPROVED = "approved", "Approved"
        SUPERSEDED = "superseded", "Superseded"

    check_ref = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="baselines")
    status = models.CharField(max_length=16, choices=Status.choices)
    value = models.JSONField(default=dict)
    digest = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["check_ref"],
                condition=models.Q(status="approved"),
                name="domains_one_approved_baseline",
            ),
            models.UniqueConstraint(
                fields=["check_ref"],
                condition=models.Q(status="proposed"),
                name="domains_one_proposed_baseline",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_ref_id} {self.status}"


class ExpectedChange(models.Model):
    """A change an operator announced before it happens (a certificate renewal with a new key, a
    DNS move): when a check finds exactly this (kind, value), the observation becomes the approved
    baseline instead of raising an alert."""

    domain = models.ForeignKey(WatchedDomain, on_delete=models.CASCADE, related_name="expected")
    signal = models.CharField(max_length=16, choices=Signal.choices)
    kind = models.CharField(max_length=40)
    value = models.JSONField()
    note = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.domain_id}/{self.signal}/{self.kind}"


class Incident(models.Model):
    """Alerts of one domain grouped for the people handling them. Its status changes only through
    domains.services.transition_incident; every change is a log entry."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        MITIGATING = "mitigating", "Mitigating"
        RESOLVED = "resolved", "Resolved"

    domain = models.ForeignKey(WatchedDomain, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=40)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    title = models.CharField(max_length=300)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    # The runbook of `kind`: [{"step": str, "done": bool, "by": username|None, "at": iso|None}]
    checklist = models.JSONField(default=list)
    opened_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title} ({self.status})"


class IncidentLogEntry(models.Model):
    """Who did what to an incident, append-only."""

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="log")
    at = models.DateTimeField(default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    action = models.CharField(max_length=40)
    from_status = models.CharField(max_length=16, blank=True)
    to_status = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.incident_id} {self.action} at {self.at:%Y-%m-%d %H:%M}"

    def save(self, *args: object, **kwargs: object) -> None:
        if self.pk is not None:
            raise ValueError("the incident log is append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise ValueError("the incident log is append-only")


class Alert(models.Model):
    """One change of one signal. Deduplicated by fingerprint while open (the flip model)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    domain = models.ForeignKey(WatchedDomain, on_delete=models.CASCADE, related_name="alerts")
    signal = models.CharField(max_length=16, choices=Signal.choices)
    kind = models.CharField(max_length=40)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    summary = models.CharField(max_length=500)
    value = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    last_notified_at = models.DateTimeField(null=True, blank=True)
    notifications = models.PositiveIntegerField(default=0)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=40, blank=True)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )

    class Meta:
        ordering = ["-first_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=models.Q(status="open"),
                name="domains_one_open_alert_per_fingerprint",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.domain_id} ({self.status})"


class Lockdown(models.Model):
    """The one switch (a single row, pk=1). While on, sensitive actions are refused (423)."""

    enabled = models.BooleanField(default=False)
    reason = models.CharField(max_length=300, blank=True)
    automatic = models.BooleanField(default=False)
    changed_at = models.DateTimeField(null=True, blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"lockdown {'on' if self.enabled else 'off'}"
