from typing import Any

from rest_framework import serializers

from accounts.models import USERNAME_PATTERN, User
from chain.models import ChainOperation


class UsernameField(serializers.RegexField):
    """3 to 32 of a-z 0-9 _ . - ; compared case-insensitively, so it is lower-cased first."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(USERNAME_PATTERN, max_length=32, **kwargs)  # type: ignore[arg-type]

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            data = data.strip().lower()
        return str(super().to_internal_value(data))


# Declared field by field: a ModelSerializer builds its fields from the model again for every
# response, which cost a sign-in about as much as one of its SQL statements.
class UserSummary(serializers.Serializer[User]):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(max_length=32)
    display_name = serializers.CharField(max_length=64, allow_blank=True)


class OperationOutput(serializers.ModelSerializer[ChainOperation]):
    """A chain operation as the API shows it: what it does, where it is, its hashes, and why it
    failed."""

    account = serializers.SerializerMethodField()
    passkey_id = serializers.SerializerMethodField()
    error = serializers.CharField(source="last_error", read_only=True)

    class Meta:
        model = ChainOperation
        fields = [
            "id",
            "kind",
            "label",
            "status",
            "account",
            "passkey_id",
            "user_op_hash",
            "tx_hash",
            "block_number",
            "revert_reason",
            "error",
            "created_at",
            "updated_at",
            "signed_at",
            "submitted_at",
            "included_at",
            "confirmed_at",
            "expires_at",
        ]

    def get_account(self, operation: ChainOperation) -> str | None:
        return operation.account or None

    def get_passkey_id(self, operation: ChainOperation) -> int | None:
        """The passkey an add_passkey / remove_passkey operation is about."""
        passkey_id = operation.details.get("passkey_id")
        return int(passkey_id) if passkey_id is not None else None
