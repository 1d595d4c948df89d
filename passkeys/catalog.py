"""The authenticator catalog: AAGUID → provider, from the community passkey-authenticator-aaguids
JSON format: `{"<aaguid>": {"name": str, "icon_light": "data:image/...", "icon_dark": ...}}`."""

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import requests
from django.db import transaction

from passkeys.models import AuthenticatorProvider

logger = logging.getLogger(__name__)

MAX_CATALOG_BYTES = 10 * 1024 * 1024
FETCH_TIMEOUT_SECONDS = 30
ICON_PREFIXES = ("data:image/png;base64,", "data:image/svg+xml;base64,", "data:image/webp;base64,")


class CatalogError(Exception):
    """The catalog could not be read or is not in the expected format; nothing was changed."""


def _read(source: str) -> bytes:
    if source.startswith(("http://", "https://")):
        try:
            with requests.get(source, timeout=FETCH_TIMEOUT_SECONDS, stream=True) as response:
                response.raise_for_status()
                content = response.raw.read(MAX_CATALOG_BYTES + 1, decode_content=True)
        except requests.RequestException as exc:
            raise CatalogError(f"could not fetch {source}: {exc}") from exc
    else:
        try:
            with Path(source).open("rb") as handle:
                content = handle.read(MAX_CATALOG_BYTES + 1)
        except OSError as exc:
            raise CatalogError(f"could not read {source}: {exc.strerror}") from exc
    if len(content) > MAX_CATALOG_BYTES:
        raise CatalogError(f"{source} is larger than {MAX_CATALOG_BYTES} bytes")
    return content


def _icon(entry: dict[str, Any], key: str, aaguid: str) -> str:
    icon = entry.get(key) or ""
    if not isinstance(icon, str) or (icon and not icon.startswith(ICON_PREFIXES)):
        raise CatalogError(f"{aaguid}: {key} must be a base64 PNG, SVG or WebP data URI")
    return icon


def parse_catalog(content: bytes) -> list[AuthenticatorProvider]:
    try:
        document = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CatalogError(f"not JSON: {exc}") from exc
    if not isinstance(document, dict) or not document:
        raise CatalogError("expected a non-empty JSON object keyed by AAGUID")
    providers = []
    for key, entry in document.items():
        try:
            aaguid = uuid.UUID(key)
        except ValueError as exc:
            raise CatalogError(f"{key!r} is not an AAGUID") from exc
        if not isinstance(entry, dict):
            raise CatalogError(f"{key}: expected an object")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise CatalogError(f"{key}: name must be a string of 1 to 128 characters")
        providers.append(
            AuthenticatorProvider(
                aaguid=aaguid,
                name=name.strip(),
                icon_light=_icon(entry, "icon_light", key),
                icon_dark=_icon(entry, "icon_dark", key),
            )
        )
    return providers


def import_catalog(*, source: str) -> int:
    """Replace the catalog with the one at `source` (a path or an http(s) URL), all or nothing."""
    providers = parse_catalog(_read(source))
    with transaction.atomic():
        AuthenticatorProvider.objects.exclude(aaguid__in=[p.aaguid for p in providers]).delete()
        AuthenticatorProvider.objects.bulk_create(
            providers,
            update_conflicts=True,
            unique_fields=["aaguid"],
            update_fields=["name", "icon_light", "icon_dark", "updated_at"],
        )
    logger.info("authenticator catalog: %d providers from %s", len(providers), source)
    return len(providers)


def refresh_catalog(*, source: str) -> int | None:
    """The weekly refresh: a failure keeps the previous catalog and says why in the log."""
    try:
        return import_catalog(source=source)
    except CatalogError as exc:
        logger.warning("authenticator catalog refresh failed, keeping the previous one: %s", exc)
        return None
