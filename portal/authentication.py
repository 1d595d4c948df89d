from typing import Any

from django.http import HttpRequest
from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


def django_request(request: Any) -> HttpRequest:
    return request._request if isinstance(request, Request) else request


class PortalSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, with the CSRF check run on Django's request.

    DRF hands its own Request to Django's CSRF check, whose `request.POST` makes DRF parse the
    whole body: before the rate limit, and before the view. On Django's request the check reads
    only the cookie and the header (a JSON body is never read for it).
    """

    def enforce_csrf(self, request: Any) -> None:
        super().enforce_csrf(django_request(request))  # type: ignore[arg-type]
