"""Template helpers for the passkey pages: what the WebAuthn Signal API needs (credential ids and
the user handle in base64url, the RP ID)."""

import base64

from django import template
from django.conf import settings

register = template.Library()


@register.filter
def base64url(value: bytes | memoryview | None) -> str:
    """Unpadded base64url, as WebAuthn JSON writes credential ids and user handles."""
    if value is None:
        return ""
    return base64.urlsafe_b64encode(bytes(value)).rstrip(b"=").decode("ascii")


@register.simple_tag
def rp_id() -> str:
    return str(settings.PORTAL_RP_ID)
