from celery import shared_task
from django.conf import settings

from passkeys.catalog import refresh_catalog
from passkeys.ceremonies import purge_stale_ceremonies


@shared_task
def purge_stale_ceremonies_task() -> int:
    return purge_stale_ceremonies()


@shared_task
def refresh_authenticator_catalog() -> int | None:
    if not settings.PORTAL_AAGUID_URL:
        return None
    return refresh_catalog(source=settings.PORTAL_AAGUID_URL)
