import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

app = Celery("portal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _ensure_filesystem_broker_folders() -> None:
    from django.conf import settings

    if settings.CELERY_BROKER_URL == "filesystem://":
        for key in ("data_folder_in", "processed_folder"):
            os.makedirs(str(settings.CELERY_BROKER_TRANSPORT_OPTIONS[key]), exist_ok=True)


@app.on_after_configure.connect
def _prepare_broker(sender: Celery, **kwargs: object) -> None:
    _ensure_filesystem_broker_folders()


@task_prerun.connect
@task_postrun.connect
def _close_old_database_connections(task: Any = None, **kwargs: object) -> None:
    """What Django does around each request: drop a connection past CONN_MAX_AGE or unusable
    (CONN_HEALTH_CHECKS checks it before its next use), keep the others. Not for a task run
    eagerly: it runs inside its caller's connection and transaction."""
    from django.db import close_old_connections

    if task is not None and not getattr(task.request, "is_eager", False):
        close_old_connections()
