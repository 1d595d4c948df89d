import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from domains.services import run_watch


class Command(BaseCommand):
    help = "Run every domain check now (--once), or every DOMAINS_CHECK_SECONDS until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="run once and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            result = run_watch()
            self.stdout.write(f"domain watch: {result}")
            if options["once"]:
                return
            time.sleep(settings.DOMAINS_CHECK_SECONDS)
