"""Template helpers that keep the activity log readable: `short_user_agent`, `event_summary`."""

import re
from typing import Any

from django import template

register = template.Library()


_BROWSERS = [
    ("Edg/", "Edge"),
    ("OPR/", "Opera"),
    ("Firefox/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
]
_SYSTEMS = [
    ("iPhone", "iPhone"),
    ("iPad", "iPad"),
    ("Android", "Android"),
    ("CrOS", "ChromeOS"),
    ("Mac OS X", "macOS"),
    ("Windows", "Windows"),
    ("Linux", "Linux"),
]


@register.filter
def short_user_agent(value: str | None) -> str:
    """'Chrome on Linux' for a browser's user agent; other clients shortened to 40 characters."""
    agent = (value or "").strip()
    if not agent:
        return "—"
    browser = next((name for marker, name in _BROWSERS if marker in agent), None)
    system = next((name for marker, name in _SYSTEMS if marker in agent), None)
    if browser and system:
        return f"{'Headless ' if 'Headless' in agent else ''}{browser} on {system}"
    return agent if len(agent) <= 40 else agent[:39] + "…"


REASONS = {
    "unknown_credential": "a passkey the portal does not know",
    "credential_not_allowed": "a passkey of another account",
    "user_handle_mismatch": "a passkey of another account",
    "invalid_signature": "the passkey's signature did not check out",
    "user_verification_missing": "the device did not verify the person",
    "user_presence_missing": "nobody touched the device",
    "sign_count_not_increased": "the passkey may have been copied",
    "account_disabled": "the account is disabled",
    "ceremony_expired": "the request had expired",
    "ceremony_used": "the request had already been used",
    "origin_not_allowed": "a request from another site",
    "rp_id_mismatch": "a passkey for another site",
}

_CODE = re.compile(r"^[a-z0-9_]+$")


def _reason(code: str) -> str:
    if code in REASONS:
        return REASONS[code]
    return code.replace("_", " ") if _CODE.match(code) else code


@register.filter
def event_summary(details: dict[str, Any] | None) -> str:
    """One line about an audit event's details: the passkey's name, a rename, a refusal's reason."""
    details = details or {}
    parts = []
    if details.get("old_name") and details.get("name"):
        parts.append(f"“{details['old_name']}” → “{details['name']}”")
    elif details.get("name"):
        parts.append(f"“{details['name']}”")
    if details.get("reason"):
        parts.append(f"Reason: {_reason(str(details['reason']))}")
    if details.get("during"):
        parts.append(f"during {str(details['during']).replace('_', ' ')}")
    if details.get("via"):
        parts.append(f"via {details['via']}")
    return " · ".join(parts)
