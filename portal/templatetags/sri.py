"""`{% sri 'js/page.js' %}`: the Subresource Integrity hash of one of the portal's static files, for
`<script src="{% static 'js/page.js' %}" integrity="{% sri 'js/page.js' %}">`. The browser then
refuses a file the portal did not ship, and the domain watch's `content` check flags one."""

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from django import template
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage

register = template.Library()


def _file(path: str) -> Path:
    try:
        collected = Path(staticfiles_storage.path(path))
        if collected.is_file():
            return collected
    except NotImplementedError:
        pass
    found = finders.find(path)
    if not found:
        raise template.TemplateSyntaxError(f"no static file {path!r}")
    return Path(str(found))


def _digest(path: str) -> str:
    digest = hashlib.sha384(_file(path).read_bytes()).digest()
    return "sha384-" + base64.b64encode(digest).decode()


_cached_digest = lru_cache(maxsize=256)(_digest)


@register.simple_tag
def sri(path: str) -> str:
    # Files change under `runserver`; a deployed release does not.
    return _digest(path) if settings.DEBUG else _cached_digest(path)
