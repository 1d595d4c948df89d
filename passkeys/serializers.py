import json
from typing import Any

from rest_framework import serializers

from passkeys.models import Passkey

MAX_CREDENTIAL_JSON_BYTES = 16 * 1024


class CredentialField(serializers.JSONField):
    """A WebAuthn response as the browser's `toJSON()` gives it: an object of bounded size."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.", code="invalid")
        if len(json.dumps(data)) > MAX_CREDENTIAL_JSON_BYTES:
            raise serializers.ValidationError("Too large.", code="max_length")
        return data


class CeremonyIdField(serializers.UUIDField):
    """A ceremony id as the options response gave it: a UUID string (DRF would also take ints)."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid", value=data)
        return super().to_internal_value(data)


class PasskeyOutput(serializers.ModelSerializer[Passkey]):
    device_type = serializers.CharField(read_only=True)

    class Meta:
        model = Passkey
        fields = [
            "id",
            "name",
            "aaguid",
            "device_type",
            "backed_up",
            "transports",
            "created_at",
            "last_used_at",
        ]
