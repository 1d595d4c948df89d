from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from passkeys.catalog import CatalogError, import_catalog


class Command(BaseCommand):
    help = "Load the authenticator catalog (AAGUID → provider) from a file or an http(s) URL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("source", help="path or URL of a passkey-authenticator-aaguids JSON")

    def handle(self, *args: Any, source: str, **options: Any) -> None:
        try:
            count = import_catalog(source=source)
        except CatalogError as exc:
            raise CommandError(f"catalog not changed: {exc}") from exc
        self.stdout.write(f"Imported {count} authenticator providers.")
