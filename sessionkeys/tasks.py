"""Celery tasks of the session keys: thin wrappers around the services."""

import logging

from celery import shared_task

from sessionkeys.services import expire_sessions, purge_prepared_operations

logger = logging.getLogger(__name__)


@shared_task
def expire_sessions_task() -> int:
    """Beat: mark sessions past their expiry; forget stale relay preparations."""
    marked = expire_sessions()
    purge_prepared_operations()
    if marked:
        logger.info("marked %d sessions expired", marked)
    return marked
