from django.http import HttpRequest

from portal.guards import active_banners


def guard_banners(request: HttpRequest) -> dict[str, list[str]]:
    """`guard_banners`: what every page must say while a guard is up (e.g. a lockdown)."""
    return {"guard_banners": active_banners()}
