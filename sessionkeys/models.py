"""Session keys a person granted to dapps, the presets operators offer, and the user operations
dapps send through the portal's relay."""

from django.db import models
from django.utils import timezone

from accounts.models import SmartAccount
from chain.models import ChainOperation


class Session(models.Model):
    """A session key of one smart account, asked for by a dapp (`origin`). The spec is kept
    exactly as it goes on chain (`spec`, its ABI encoding; `session_hash` = keccak256 of it) and
    as JSON for people (`spec_json`). Its status changes only in `sessionkeys.services`
    (`SESSION_TRANSITIONS`); `active` and `revoked` come from the indexer's SessionCreated /
    SessionRevoked events."""

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Waiting for your passkey"
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"
        FAILED = "failed", "Never created"

    account = models.ForeignKey(SmartAccount, on_delete=models.PROTECT, related_name="sessions")
    chain_id = models.PositiveBigIntegerField()
    signer = models.CharField(max_length=42)
    session_hash = models.CharField(max_length=66)
    spec = models.BinaryField()
    spec_json = models.JSONField()
    # The dapp's request as it was received (ERC-7715 permissions or SSO's session config).
    request = models.JSONField(default=dict, blank=True)
    origin = models.CharField(max_length=255, db_index=True)
    label = models.CharField(max_length=100, blank=True)
    status = models.CharField(
        max_length=20, choices=Status.choices, default=Status.PENDING_APPROVAL, db_index=True
    )
    expires_at = models.DateTimeField()
    create_operation = models.ForeignKey(
        ChainOperation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoke_operation = models.ForeignKey(
        ChainOperation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    approved_at = models.DateTimeField(null=True, blank=True)  # active on chain
    revoked_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    # Set by an operator (admin): the relay sponsors nothing more for it, whatever the chain says,
    # while the owner's passkey-approved revocation waits.
    suspended_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "account", "session_hash"], name="sessionkeys_unique_hash"
            )
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"session {self.session_hash[:10]} of {self.account.address} ({self.status})"


class SessionPreset(models.Model):
    """What an operator offers as a known-good session (e.g. "game: 0.01 ETH/day, 7 days"): a
    request within a preset's bounds is shown as matching it."""

    name = models.CharField(max_length=64, unique=True)
    description = models.CharField(max_length=200, blank=True)
    # Empty: any dapp; else only requests from this origin match.
    origin = models.CharField(max_length=255, blank=True)
    native_per_period_wei = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    period_seconds = models.PositiveIntegerField(default=86400)
    duration_seconds = models.PositiveIntegerField(default=7 * 86400)
    fee_limit_wei = models.DecimalField(max_digits=78, decimal_places=0, default=10**16)
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RelayedOperation(models.Model):
    """A session user operation the relay prepared (sponsored, unsigned) or took (signed), by
    its hash. `operation` is the pipeline's operation once the signed one was accepted."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="relayed")
    user_op_hash = models.CharField(max_length=66, unique=True)
    user_operation = models.JSONField()
    sponsored = models.BooleanField(default=True)
    max_cost = models.DecimalField(max_digits=78, decimal_places=0, default=0)
    operation = models.ForeignKey(
        ChainOperation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"relayed {self.user_op_hash[:10]}"


class DappConnection(models.Model):
    """A dapp (`origin`) the person let see their account (eth_requestAccounts). One row per
    person and origin: disconnecting sets `disconnected_at`, connecting again clears it."""

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="dapp_connections"
    )
    account = models.ForeignKey(
        SmartAccount, on_delete=models.CASCADE, related_name="dapp_connections"
    )
    origin = models.CharField(max_length=255)
    connected_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    disconnected_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-connected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "origin"], name="sessionkeys_one_connection")
        ]

    def __str__(self) -> str:
        return f"{self.origin} for user {self.user_id}"

    @property
    def active(self) -> bool:
        return self.disconnected_at is None


class CallBundle(models.Model):
    """Calls a connected dapp asked the account to make in one user operation
    (eth_sendTransaction, wallet_sendCalls), by its EIP-5792 id (random: it is the secret that
    lets anyone read its status)."""

    bundle_id = models.CharField(max_length=66, unique=True)
    connection = models.ForeignKey(DappConnection, on_delete=models.CASCADE, related_name="bundles")
    account = models.ForeignKey(SmartAccount, on_delete=models.PROTECT, related_name="+")
    origin = models.CharField(max_length=255)
    # [{"to", "value" (decimal string), "data" (0x hex)}], as they go on chain.
    calls = models.JSONField()
    idempotency_key = models.CharField(max_length=128)
    operation = models.ForeignKey(ChainOperation, on_delete=models.PROTECT, related_name="+")
    # The EIP-5792 receipt, kept once the operation is final (confirmed, or reverted on chain).
    receipt = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "idempotency_key"], name="sessionkeys_bundle_key"
            )
        ]

    def __str__(self) -> str:
        return f"calls {self.bundle_id[:10]} from {self.origin}"
