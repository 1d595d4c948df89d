from typing import Any

from django.core.management.base import BaseCommand

from accounts.smart_accounts import requeue_failed_deployments


class Command(BaseCommand):
    help = "Queue a new deployment attempt for every smart account whose deployment failed."

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = requeue_failed_deployments()
        for account in accounts:
            self.stdout.write(f"queued {account.address} for {account.user}")
        self.stdout.write(f"{len(accounts)} deployment(s) queued again.")
