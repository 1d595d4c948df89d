import unicodedata

from django.core.exceptions import ValidationError


def reject_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in value):
        raise ValidationError("Control and invisible characters are not allowed.", code="invalid")
