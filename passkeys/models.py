import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class Passkey(models.Model):
    """A WebAuthn credential: the public half of a person's passkey."""

    class OnChain(models.TextChoices):
        PENDING = "pending", "Not on chain yet"
        ACTIVE = "active", "Active on chain"
        REMOVED = "removed", "Removed on chain"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="passkeys"
    )
    name = models.CharField(max_length=64)
    credential_id = models.BinaryField(max_length=1023, unique=True)
    public_key = models.BinaryField()
    sign_count = models.BigIntegerField(default=0)
    aaguid = models.UUIDField(null=True, blank=True)
    transports = models.JSONField(default=list, blank=True)
    backup_eligible = models.BooleanField(default=False)
    backed_up = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Written by the chain indexer from WebAuthnValidator's events, never by anyone else.
    onchain = models.CharField(max_length=16, choices=OnChain.choices, default=OnChain.PENDING)

    # The catalog entry for `aaguid`, attached by passkeys.selectors.with_providers.
    provider: "AuthenticatorProvider | None" = None

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user_id})"

    @property
    def device_type(self) -> str:
        return "multi_device" if self.backup_eligible else "single_device"


class AuthenticatorProvider(models.Model):
    """The authenticator catalog: which credential manager or security key an AAGUID names."""

    aaguid = models.UUIDField(primary_key=True)
    name = models.CharField(max_length=128)
    icon_light = models.TextField(blank=True)
    icon_dark = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ceremony(models.Model):
    """A pending WebAuthn ceremony, kept server-side (not in a cookie) so API clients work."""

    class Purpose(models.TextChoices):
        REGISTRATION = "registration"
        AUTHENTICATION = "authentication"
        REAUTHENTICATION = "reauthentication"
        ADD_PASSKEY = "add_passkey"
        # Approving a chain operation: the challenge is its 32-byte user operation hash.
        OPERATION = "operation"
        # A new passkey for an account whose owner lost every device (a feature app's recovery):
        # verified now, installed on chain later by the guardians' recovery.
        RECOVERY = "recovery"
        # Signing a message for a dapp: the challenge is its ERC-7739 digest (SignatureRequest).
        MESSAGE = "message"

    ceremony_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    challenge = models.BinaryField(max_length=64)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # Registration of a new account: who is signing up (the user does not exist yet).
    user_handle = models.BinaryField(max_length=64, null=True, blank=True)
    username = models.CharField(max_length=32, blank=True)
    display_name = models.CharField(max_length=64, blank=True)
    # Approving a chain operation: the operation whose user operation hash is the challenge.
    operation = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    consumed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"{self.purpose} {self.ceremony_id}"


class SignatureRequest(models.Model):
    """A message a person is asked to sign with a passkey for their smart account
    (`personal_sign` or `eth_signTypedData_v4`), nested the ERC-7739 way: its ceremony's challenge
    is the digest the account checks. Deleted with its ceremony (a day after it expired)."""

    class Kind(models.TextChoices):
        PERSONAL_SIGN = "personal_sign", "Message"
        TYPED_DATA = "typed_data", "Typed data"

    ceremony = models.OneToOneField(
        Ceremony, on_delete=models.CASCADE, related_name="signature_request"
    )
    account = models.ForeignKey("accounts.SmartAccount", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    # What the person is shown: {"text": str} or {"raw": "0x…"} for a message, the typed data.
    message = models.JSONField()
    # The hash a verifier passes to isValidSignature, and what follows the validator signature.
    hash = models.BinaryField(max_length=32)
    trailer = models.BinaryField(blank=True, default=b"")
    signed_at = models.DateTimeField(null=True, blank=True)
    passkey = models.ForeignKey(
        Passkey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The dapp that asked (its origin), when a dapp asked through the portal's popup.
    origin = models.CharField(max_length=255, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.kind} {self.pk} for {self.account_id}"
