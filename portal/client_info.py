"""Who is on the other end of a request, as far as the audit log and rate limits are concerned."""

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest


@dataclass(frozen=True)
class ClientInfo:
    ip_address: str | None
    user_agent: str

    @classmethod
    def from_request(cls, request: HttpRequest) -> "ClientInfo":
        return cls(
            ip_address=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:512],
        )


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address PORTAL_NUM_PROXIES trusted proxies put in X-Forwarded-For."""
    proxies = settings.PORTAL_NUM_PROXIES
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    if proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",")]
        return hops[-min(proxies, len(hops))] or None
    return request.META.get("REMOTE_ADDR") or None
