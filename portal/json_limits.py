"""Bounds on JSON that clients send, checked before any parser recurses into it.

Python's json module recurses once per nesting level. The chain libraries (py_ecc, through
eth_account) raise the interpreter's recursion limit to 100,000, far above what the C stack holds,
so a small body nested deep enough would crash the worker instead of raising RecursionError.
Whatever the recursion limit is, the nesting of client JSON is bounded here first.
"""

import re

from django.conf import settings

from portal.errors import PortalError

# A string literal, escapes included (the "unrolled loop" form: linear, no backtracking).
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def nesting_depth_exceeds(text: str, *, limit: int) -> bool:
    """Whether arrays and objects in `text` nest deeper than `limit` (brackets inside strings do
    not count). Never recurses; text that is not JSON is judged as well as it can be."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub('""', text)):
        if match.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def ensure_shallow(text: str, *, what: str = "The request body") -> None:
    """Refuse JSON nested deeper than PORTAL_JSON_MAX_DEPTH, before it is parsed."""
    limit = int(settings.PORTAL_JSON_MAX_DEPTH)
    if nesting_depth_exceeds(text, limit=limit):
        raise PortalError(
            "json_too_deep", f"{what} nests arrays or objects more than {limit} levels deep."
        )
