"""The one JSON parser of the API and of the pages' JSON endpoints: size and nesting bounded."""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.utils import json

from portal.errors import PortalError
from portal.json_limits import ensure_shallow


class BoundedJSONParser(JSONParser):
    """JSON bodies of at most PORTAL_MAX_JSON_BYTES, UTF-8 (RFC 8259), nested at most
    PORTAL_JSON_MAX_DEPTH levels: each checked before json.loads runs."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = int(settings.PORTAL_MAX_JSON_BYTES)
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PortalError(
                "request_too_large",
                f"The request body is larger than {limit} bytes.",
                status=413,
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError("JSON parse error - the body is not UTF-8.") from exc
        ensure_shallow(text)
        try:
            return json.loads(text, parse_constant=json.strict_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from exc
