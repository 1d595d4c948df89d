import secrets
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

USERNAME_PATTERN = r"^[a-z0-9_.-]{3,32}$"
USER_HANDLE_BYTES = 32


def new_user_handle() -> bytes:
    """A random WebAuthn user handle: never derived from the username, email or primary key."""
    return secrets.token_bytes(USER_HANDLE_BYTES)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> "User":
        return self.get(username__iexact=username or "")

    def create_user(self, username: str, **fields: object) -> "User":
        user = self.model(username=username.lower(), **fields)
        user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, username: str, **fields: object) -> "User":
        fields.pop("password", None)
        return self.create_user(username, is_staff=True, is_superuser=True, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Passkeys are the only way in: the password is always unusable."""

    username = models.CharField(
        max_length=32,
        unique=True,
        validators=[RegexValidator(USERNAME_PATTERN, "3 to 32 characters: a-z, 0-9, _ . -")],
    )
    display_name = models.CharField(max_length=64, blank=True)
    email = models.EmailField(blank=True)
    user_handle = models.BinaryField(
        max_length=64, unique=True, default=new_user_handle, editable=False
    )
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "username"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("username"), name="accounts_user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username

    def get_full_name(self) -> str:
        return self.display_name or self.username

    def get_short_name(self) -> str:
        return self.display_name or self.username


class AuditEvent(models.Model):
    """One security-relevant event. Written by services, never edited."""

    class Kind(models.TextChoices):
        SIGNUP = "signup", "Signed up"
        LOGIN_SUCCEEDED = "login_succeeded", "Signed in"
        LOGIN_FAILED = "login_failed", "Sign-in refused"
        REAUTHENTICATED = "reauthenticated", "Confirmed with a passkey"
        PASSKEY_ADDED = "passkey_added", "Passkey added"
        PASSKEY_RENAMED = "passkey_renamed", "Passkey renamed"
        PASSKEY_DELETED = "passkey_deleted", "Passkey deleted"
        LOGOUT = "logout", "Signed out"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        COUNTER_ANOMALY = "counter_anomaly", "Possible cloned authenticator"
        OPERATION_APPROVED = "operation_approved", "Chain operation approved"
        OPERATION_REFUSED = "operation_refused", "Chain operation approval refused"
        STAFF_CHANGED = "staff_changed", "Admin rights changed"
        PROFILE_UPDATED = "profile_updated", "Display name or email changed"
        DOMAIN_WATCH_CHANGED = "domain_watch_changed", "Watched domains changed"
        DOMAIN_BASELINE_APPROVED = "domain_baseline_approved", "Domain baseline approved"
        DOMAIN_CHANGE_EXPECTED = "domain_change_expected", "Domain change pre-approved"
        INCIDENT_CHANGED = "incident_changed", "Domain incident status changed"
        LOCKDOWN_CHANGED = "lockdown_changed", "Lockdown turned on or off"
        SIGNIN_ENDED = "signin_ended", "Signed out elsewhere"
        ACTION_REFUSED = "action_refused", "Sensitive action refused (lockdown)"
        GUARDIAN_CHANGED = "guardian_changed", "Recovery guardian proposed, accepted or removed"
        RECOVERY_STARTED = "recovery_started", "Account recovery started"
        RECOVERY_APPROVED = "recovery_approved", "Account recovery approved by a guardian"
        RECOVERY_REFUSED = "recovery_refused", "Account recovery refused by a guardian"
        RECOVERY_DISCARDED = "recovery_discarded", "Account recovery cancelled"
        RECOVERY_FINISHED = "recovery_finished", "Account recovery finished or expired"
        SESSION_REQUESTED = "session_requested", "Session key requested by a dapp"
        SESSION_REJECTED = "session_rejected", "Session key request rejected"
        SESSION_REVOKE_REQUESTED = "session_revoke_requested", "Session key revocation requested"
        SESSION_RELAY_REFUSED = "session_relay_refused", "Session operation refused by the relay"
        MESSAGE_SIGNED = "message_signed", "Message signed for an app"
        MESSAGE_REFUSED = "message_refused", "Message signature refused"
        DAPP_CONNECTED = "dapp_connected", "App connected"
        DAPP_DISCONNECTED = "dapp_disconnected", "App disconnected"
        DAPP_CALLS_REQUESTED = "dapp_calls_requested", "Calls requested by an app"
        DAPP_CALLS_REFUSED = "dapp_calls_refused", "Calls from an app refused"

    user = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events"
    )
    kind = models.CharField(max_length=40, choices=Kind.choices)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} {self.created_at:%Y-%m-%d %H:%M}"


class TokenReauthentication(models.Model):
    """When the holder of an API token last proved possession of a passkey again (sudo mode),
    after the sign-in that created the token (whose creation time is the first such proof).

    Web sessions keep the same fact in the session; see accounts.services.mark_reauthenticated.
    """

    token = models.OneToOneField(
        "knox.AuthToken", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    verified_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.token_id} at {self.verified_at:%Y-%m-%d %H:%M}"


class SignIn(models.Model):
    """One place where a person is signed in: a browser session or an API token, with the passkey
    that last proved it (the one it signed in with, or a later confirmation's).

    Deleting that passkey deletes the sign-in, and with it the token or the session (and so their
    sudo mode): see accounts.signals.
    """

    class Kind(models.TextChoices):
        SESSION = "session", "Browser"
        TOKEN = "token", "API token"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="signins")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    passkey = models.ForeignKey(
        "passkeys.Passkey", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    token = models.OneToOneField(
        "knox.AuthToken", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    session_key = models.CharField(max_length=40, null=True, blank=True, unique=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["user", "expires_at"])]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind="session", session_key__isnull=False, token__isnull=True)
                    | models.Q(kind="token", token__isnull=False, session_key__isnull=True)
                ),
                name="accounts_signin_session_xor_token",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.user_id} since {self.created_at:%Y-%m-%d %H:%M}"


class SmartAccount(models.Model):
    """A person's smart account on one chain. Its address is known before it is deployed."""

    class Status(models.TextChoices):
        COUNTERFACTUAL = "counterfactual", "Not deployed yet"
        DEPLOYING = "deploying", "Deploying"
        DEPLOYED = "deployed", "Deployed"
        FAILED = "failed", "Deployment failed"

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="smart_accounts")
    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    salt = models.CharField(max_length=66)
    # MSAFactory.deployAccount's initData, and the relayer the address was predicted for.
    init_data = models.BinaryField()
    deployer = models.CharField(max_length=42)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.COUNTERFACTUAL)
    deployment = models.ForeignKey(
        "chain.ChainOperation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    deployed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "chain_id"], name="accounts_one_account_per_chain"
            ),
            models.UniqueConstraint(fields=["chain_id", "address"], name="accounts_unique_address"),
        ]

    def __str__(self) -> str:
        return f"{self.address}@{self.chain_id} ({self.status})"
