from typing import Any

from django.core.management.base import BaseCommand

from passkeys.onchain import open_missing_accounts


class Command(BaseCommand):
    help = "Open (and deploy) a smart account for every user who has none on CHAIN_ID yet."

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = open_missing_accounts()
        for account in accounts:
            self.stdout.write(f"opened {account.address} for {account.user}")
        self.stdout.write(f"{len(accounts)} account(s) opened.")
