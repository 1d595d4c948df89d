from typing import Any

from rest_framework import serializers

from accounts.models import USERNAME_PATTERN, User


class UsernameField(serializers.RegexField):
    """3 to 32 of a-z 0-9 _ . - ; compared case-insensitively, so it is lower-cased first."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(USERNAME_PATTERN, max_length=32, **kwargs)  # type: ignore[arg-type]

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            data = data.strip().lower()
        return str(super().to_internal_value(data))


class UserSummary(serializers.ModelSerializer[User]):
    class Meta:
        model = User
        fields = ["id", "username", "display_name"]
