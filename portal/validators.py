import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError

from portal.errors import PortalError

ORIGIN = re.compile(
    r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$"
)


def reject_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Cs", "Co", "Cn"} for ch in value):
        raise ValidationError("Control and invisible characters are not allowed.", code="invalid")


def valid_origin(value: str) -> bool:
    """A web origin as browsers send it: scheme://host[:port]."""
    return bool(ORIGIN.match(value)) and len(value) <= 255


def valid_dapp_origin(value: str) -> bool:
    """An origin a dapp can have: never one of the portal's own."""
    return valid_origin(value) and value not in settings.PORTAL_ORIGINS


def check_dapp_origin(value: str) -> None:
    """Refuse (400 `invalid_origin`) what is not a dapp's origin."""
    if not valid_dapp_origin(value):
        raise PortalError(
            "invalid_origin",
            "The origin must be a dapp's (scheme://host[:port]), not the portal's.",
        )
