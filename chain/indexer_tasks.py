"""Celery task of the event indexer (beat runs it every CHAIN_INDEXER_SECONDS)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from requests.exceptions import RequestException

from chain.indexer import IndexerError, index_chain
from chain.models import Deployment

logger = logging.getLogger(__name__)

# One tick moves the cursor at most this many batches: a long backfill is spread over ticks.
BATCHES_PER_TICK = 10


@shared_task(ignore_result=True)
def index_chain_task() -> int | None:
    """Index new blocks of CHAIN_ID; a no-op until the contracts are deployed. Returns the number
    of events added (None when skipped). A failed tick is not retried: the next one reads on."""
    if not Deployment.objects.filter(chain_id=settings.CHAIN_ID).exists():
        logger.debug("indexer: no contracts deployed on chain %s; nothing to do", settings.CHAIN_ID)
        return None
    try:
        result = index_chain(max_blocks=BATCHES_PER_TICK * settings.CHAIN_INDEXER_BATCH_BLOCKS)
    except (RequestException, OSError, IndexerError) as exc:
        logger.warning("indexer: chain %s unavailable: %s", settings.CHAIN_ID, exc)
        return None
    if result.skipped:
        logger.debug("indexer: chain %s skipped (%s)", settings.CHAIN_ID, result.skipped)
        return None
    if result.events_added or result.events_removed or result.reorgs:
        logger.info(
            "indexer: chain %s to block %s: %d events added, %d removed, %d reorgs",
            settings.CHAIN_ID,
            result.to_block,
            result.events_added,
            result.events_removed,
            result.reorgs,
        )
    return result.events_added
