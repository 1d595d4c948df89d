"""Keeping secrets out of what people and logs see: hosted RPC providers put the API key in the
URL's path, query or userinfo, and transport errors quote the URL they failed on."""

import logging
import re

# scheme://[userinfo@]host[:port][/path][?query][#fragment], and the bare "url: /path" that
# urllib3 writes after the host it names separately.
_URL = re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^\s/@'\"]*@)?([^\s/?#'\"]+)([^\s'\"]*)")
_URL_PATH = re.compile(r"(\burl: )/[^\s'\")]*")
REDACTED = "…"


def redact_urls(text: str) -> str:
    """`text` with every URL cut to its scheme, host and port: credentials, path and query
    (where providers carry the API key) become "…"."""

    def cut(match: re.Match[str]) -> str:
        scheme, host, rest = match.groups()
        return f"{scheme}{host}/{REDACTED}" if rest and rest != "/" else f"{scheme}{host}"

    return _URL_PATH.sub(rf"\1/{REDACTED}", _URL.sub(cut, text))


class RedactUrlsFilter(logging.Filter):
    """A logging filter that redacts URLs in every record's formatted message (and traceback)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            # Format the traceback now, redacted, so no handler prints the raw one.
            formatter = logging.Formatter()
            record.exc_text = redact_urls(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True
