from celery import shared_task

from passkeys.services import purge_stale_ceremonies


@shared_task
def purge_stale_ceremonies_task() -> int:
    return purge_stale_ceremonies()
