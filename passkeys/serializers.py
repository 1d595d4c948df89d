import json
import re
from typing import Any

from rest_framework import serializers

from passkeys.models import AuthenticatorProvider, Passkey
from portal.fields import StrictCharField
from portal.validators import reject_control_characters

MAX_CREDENTIAL_JSON_BYTES = 16 * 1024
HEX_BYTES = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


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


class ProviderOutput(serializers.ModelSerializer[AuthenticatorProvider]):
    class Meta:
        model = AuthenticatorProvider
        fields = ["name", "icon_light", "icon_dark"]


class PasskeyNameField(StrictCharField):
    """1 to 64 characters after trimming, no control or invisible characters."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            max_length=64, trim_whitespace=True, validators=[reject_control_characters], **kwargs
        )


class PasskeyOutput(serializers.ModelSerializer[Passkey]):
    """A passkey as the API shows it; pass passkeys through selectors.with_providers first."""

    device_type = serializers.ChoiceField(choices=["single_device", "multi_device"], read_only=True)
    provider = ProviderOutput(read_only=True, allow_null=True)

    class Meta:
        model = Passkey
        fields = [
            "id",
            "name",
            "provider",
            "aaguid",
            "device_type",
            "backed_up",
            "onchain",
            "transports",
            "created_at",
            "last_used_at",
        ]


class HexBytesField(StrictCharField):
    """0x-prefixed hex of whole bytes, as bytes."""

    def to_internal_value(self, data: Any) -> bytes:  # type: ignore[override]
        text = super().to_internal_value(data)
        if not HEX_BYTES.fullmatch(text):
            raise serializers.ValidationError("Must be 0x-prefixed hex bytes.", code="invalid")
        return bytes.fromhex(text[2:])


class TypedDataField(serializers.JSONField):
    """eth_signTypedData_v4's typed data: a JSON object (checked in depth by chain.erc7739)."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("Must be a JSON object.", code="invalid")
        return data
