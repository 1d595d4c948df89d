from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain.indexer import IndexerError, index_chain


class Command(BaseCommand):
    help = (
        "Index the portal's contract events on CHAIN_ID up to the head (what the beat task does "
        "every CHAIN_INDEXER_SECONDS). --from-block N reads again from block N: re-index or "
        "backfill; stored events are kept or corrected, never duplicated."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--from-block", type=int, default=None, help="read again from here")
        parser.add_argument(
            "--max-blocks", type=int, default=None, help="stop after this many (default: head)"
        )
        parser.add_argument(
            "--batch-blocks", type=int, default=None, help="default: CHAIN_INDEXER_BATCH_BLOCKS"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["from_block"] is not None and options["from_block"] < 0:
            raise CommandError("--from-block must be 0 or more")
        try:
            result = index_chain(
                from_block=options["from_block"],
                max_blocks=options["max_blocks"],
                batch_blocks=options["batch_blocks"],
            )
        except (IndexerError, OSError) as exc:
            raise CommandError(str(exc)) from exc
        if result.skipped == "not deployed":
            raise CommandError(
                f"no contracts recorded for chain {settings.CHAIN_ID}: run deploycontracts first"
            )
        if result.skipped:
            raise CommandError(f"skipped: {result.skipped} (another indexer is running)")
        updated = ", ".join(f"{count} {name}" for name, count in sorted(result.updated.items()))
        self.stdout.write(
            f"chain {result.chain_id}: indexed to block {result.to_block} (head {result.head}); "
            f"{result.events_added} events added, {result.events_removed} removed, "
            f"{result.reorgs} reorgs; updated: {updated or 'nothing'}"
        )
