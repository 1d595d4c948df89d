from django.db import models
from django.utils import timezone


class Deployment(models.Model):
    """Where one of the portal's contracts lives on one chain (written by `deploycontracts`)."""

    chain_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    # keccak256 of the runtime code found at `address` when recorded: a reset chain is noticed.
    code_hash = models.CharField(max_length=66)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "name"], name="chain_deployment_unique_name"
            )
        ]
        ordering = ["chain_id", "name"]

    def __str__(self) -> str:
        return f"{self.name}@{self.chain_id}: {self.address}"


class RelayerAccount(models.Model):
    """The next transaction nonce of a relayer key on a chain, handed out under a row lock so that
    two workers never use the same one."""

    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    next_nonce = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "address"], name="chain_relayer_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address}@{self.chain_id} next {self.next_nonce}"


class ChainOperation(models.Model):
    """One change on chain the portal makes for a smart account: a signed user operation sent
    through EntryPoint.handleOps, or a relayer call (deploying an account). The app that asks for
    it names its `kind` and says what it does in `label`; the chain app knows only the account's
    address. Its status changes only through chain.transitions.transition."""

    class Status(models.TextChoices):
        AWAITING_SIGNATURE = "awaiting_signature", "Waiting for your passkey"
        SIGNED = "signed", "Signed, waiting to be sent"
        SUBMITTED = "submitted", "Sent to the chain"
        INCLUDED = "included", "In a block"
        CONFIRMED = "confirmed", "Confirmed"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired unsigned"

    kind = models.CharField(max_length=32)
    label = models.CharField(max_length=200, blank=True)
    status = models.CharField(
        max_length=32, choices=Status.choices, default=Status.AWAITING_SIGNATURE
    )
    chain_id = models.PositiveBigIntegerField()
    # The smart account (EIP-55 address) the operation is for: its sender, or the account a
    # relayer call deploys.
    account = models.CharField(max_length=42, blank=True, db_index=True)
    idempotency_key = models.CharField(max_length=128, unique=True)
    # What the app that asked for it needs to finish its job (passkey id, ...): opaque here.
    details = models.JSONField(default=dict, blank=True)

    # Gas the portal may pay for it (its user operation's gas limits, paid by the paymaster; or
    # a fixed reservation for a relayer call), counted against chain.budgets.
    reserved_gas = models.PositiveBigIntegerField(default=0)

    # A user operation: its fields (hex strings) and its hash (what its signature signs).
    user_operation = models.JSONField(null=True, blank=True)
    user_op_hash = models.CharField(max_length=66, blank=True, db_index=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    # The transaction: to whom, with what data, from which relayer nonce.
    tx_to = models.CharField(max_length=42, blank=True)
    tx_data = models.BinaryField(blank=True, default=b"")
    relayer = models.CharField(max_length=42, blank=True)
    relayer_nonce = models.PositiveBigIntegerField(null=True, blank=True)
    max_fee_per_gas = models.PositiveBigIntegerField(null=True, blank=True)
    max_priority_fee_per_gas = models.PositiveBigIntegerField(null=True, blank=True)
    # The signed transaction last sent, kept so that it can be sent again unchanged.
    raw_transaction = models.BinaryField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66, blank=True, db_index=True)
    tx_hashes = models.JSONField(default=list, blank=True)
    # How it was sent: "relayer" (the portal's own transaction, alone or in a bundle) or "bundler"
    # (an ERC-4337 bundler, CHAIN_BUNDLER_URL: no relayer, nonce or raw transaction of ours).
    submitted_via = models.CharField(max_length=16, blank=True)
    # Its place in a relayer bundle (handleOps' ops, RelayerBatch's calls); None: sent alone.
    # Operations of one bundle share the relayer nonce, the raw transaction and its hashes.
    bundle_index = models.PositiveIntegerField(null=True, blank=True)

    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    revert_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    signed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    included_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        # Operations of one bundle share a relayer nonce: the nonce lock (RelayerAccount) keeps
        # two transactions from sharing one.
        indexes = [
            models.Index(fields=["status", "updated_at"]),
            models.Index(fields=["chain_id", "relayer", "relayer_nonce"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} {self.status}"


class IndexerCursor(models.Model):
    """How far the event indexer has read one chain (chain.indexer). None: nothing yet."""

    chain_id = models.PositiveBigIntegerField(unique=True)
    last_indexed_block = models.PositiveBigIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"indexer@{self.chain_id}: block {self.last_indexed_block}"


class IndexedBlock(models.Model):
    """The hash of the last block of an indexed batch. A stored hash that is no longer the chain's
    is a reorg; the newest one that still is marks where the fork began. Only recent ones kept."""

    chain_id = models.PositiveBigIntegerField()
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "number"], name="chain_indexed_block_unique"
            )
        ]
        ordering = ["chain_id", "-number"]

    def __str__(self) -> str:
        return f"{self.number}@{self.chain_id}: {self.hash}"


class ChainEvent(models.Model):
    """One log of the portal's contracts, as read by the indexer. A log is identified by its
    block hash and index, so reading it again is an upsert; a reorg deletes orphaned logs."""

    chain_id = models.PositiveBigIntegerField()
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    # From the log when the node gives it (blockTimestamp), else only for AccountDeployed.
    block_timestamp = models.DateTimeField(null=True, blank=True)
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    contract = models.CharField(max_length=64)  # WebAuthnValidator, MSAFactory, EntryPoint
    address = models.CharField(max_length=42)
    name = models.CharField(max_length=64)  # PasskeyCreated, AccountDeployed, ...
    # Decoded arguments: addresses EIP-55, bytes as 0x-hex, integers beyond 2**53 as strings.
    args = models.JSONField(default=dict)
    # The smart account the event is about (keyOwner, account, sender), and for passkey events
    # the credential id (0x-hex): what the read models are looked up by.
    account = models.CharField(max_length=42)
    credential_id = models.CharField(max_length=2100, blank=True)
    indexed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "block_hash", "log_index"], name="chain_event_unique_log"
            )
        ]
        indexes = [
            models.Index(fields=["chain_id", "block_number"]),
            models.Index(fields=["chain_id", "account", "name"]),
        ]
        ordering = ["chain_id", "block_number", "log_index"]

    def __str__(self) -> str:
        return f"{self.name} {self.account} @{self.block_number}:{self.log_index}"


class WatchedAccount(models.Model):
    """A smart account of the portal on a chain (registered by the app that opens accounts): the
    indexer stores events about these accounts only. Anyone can make the portal's validator emit
    PasskeyCreated for any address; such events of strangers' accounts are not kept."""

    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "address"], name="chain_watched_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address}@{self.chain_id}"
