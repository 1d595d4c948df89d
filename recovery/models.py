"""Guardians of a smart account and recovery requests: the portal's read models of the
GuardianExecutor, with what only the portal knows (who proposed whom, the new passkey waiting to be
installed, the short code). Their states change only in recovery.services, through the transition
tables written once in recovery.states."""

import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from chain.recovery_calls import REQUEST_DELAY_SECONDS, REQUEST_VALIDITY_SECONDS


class Guardian(models.Model):
    """Someone who may start a recovery of `account`: a portal user's smart account, an external
    address (a hardware wallet, a friend's wallet), or a recovery key derived from a code."""

    class Kind(models.TextChoices):
        PORTAL = "portal", "A portal user"
        EXTERNAL = "external", "An external address"
        RECOVERY_KEY = "recovery_key", "A recovery key"

    class Status(models.TextChoices):
        PROPOSED = "proposed", "Proposed"
        ACTIVE = "active", "Active"
        REMOVED = "removed", "Removed"

    account = models.ForeignKey(
        "accounts.SmartAccount", on_delete=models.PROTECT, related_name="guardians"
    )
    address = models.CharField(max_length=42)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # A portal guardian: the user whose smart account is `address`.
    guardian_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="guarding",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    # Written from the indexed GuardianProposed event: the guardian can accept from then on.
    proposed_on_chain = models.BooleanField(default=False)
    proposal_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acceptance_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    removal_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    activated_at = models.DateTimeField(null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    # A recovery key: when a recovery it started reached the chain (a code works once).
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "address"],
                condition=~Q(status="removed"),
                name="recovery_one_live_guardian_per_address",
            )
        ]

    def __str__(self) -> str:
        return f"{self.address} guards {self.account_id} ({self.status})"


OPEN_STATUSES = ("pending_approval", "initiated")


class RecoveryRequest(models.Model):
    """A person who lost every device asks to add a new passkey to their account: waiting for a
    guardian's approval, then initiated on chain (the 24-hour delay), then finalized — or
    discarded by the owner, or expired."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for a guardian"
        INITIATED = "initiated", "Approved: waiting out the delay"
        FINALIZED = "finalized", "Finished: the new passkey was added"
        DISCARDED = "discarded", "Cancelled"
        EXPIRED = "expired", "Expired"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    account = models.ForeignKey(
        "accounts.SmartAccount", on_delete=models.PROTECT, related_name="recovery_requests"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_requests"
    )
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING_APPROVAL
    )
    # The new passkey, verified at the start (registration rules) and stored as a portal passkey
    # once the recovery adds it on chain.
    credential_id = models.BinaryField(max_length=1023)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    aaguid = models.UUIDField(null=True, blank=True)
    transports = models.JSONField(default=list, blank=True)
    backup_eligible = models.BooleanField(default=False)
    backed_up = models.BooleanField(default=False)
    passkey_name = models.CharField(max_length=64)
    # What guardians and the owner compare: a digest of the new key.
    fingerprint = models.CharField(max_length=64)
    # HMAC of the short code the requester reads out to a guardian (never stored in clear).
    code_hash = models.CharField(max_length=64)
    code_attempts = models.PositiveIntegerField(default=0)
    # initializeRecovery/finalizeRecovery's `data`: addValidationKey's arguments.
    recovery_data = models.BinaryField()
    requester_ip = models.GenericIPAddressField(null=True, blank=True)
    requester_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    approval_deadline = models.DateTimeField()

    approved_by = models.ForeignKey(
        Guardian, null=True, blank=True, on_delete=models.SET_NULL, related_name="approvals"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    initiate_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The request's start on chain (the RecoveryInitiated block time): the delay counts from it.
    initiated_at = models.DateTimeField(null=True, blank=True)
    initiated_by = models.CharField(max_length=42, blank=True)
    finalize_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    discard_operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    ended_at = models.DateTimeField(null=True, blank=True)
    # Why it ended: finalized, discarded_by_owner, refused_by_guardian, guardian_removed,
    # too_many_codes, not_approved_in_time, not_finalized_in_time.
    end_reason = models.CharField(max_length=32, blank=True)
    passkey = models.ForeignKey(
        "passkeys.Passkey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=OPEN_STATUSES),
                name="recovery_one_open_request_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"recovery {self.public_id} of {self.account_id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def completes_at(self) -> datetime | None:
        """The first moment the new passkey can be added (strictly after the delay)."""
        if self.initiated_at is None:
            return None
        return self.initiated_at + timedelta(seconds=REQUEST_DELAY_SECONDS + 1)

    @property
    def expires_at(self) -> datetime:
        if self.initiated_at is None:
            return self.approval_deadline
        return self.initiated_at + timedelta(seconds=REQUEST_VALIDITY_SECONDS)
