from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain import services
from chain.devtools import deploy


class Command(BaseCommand):
    help = (
        "Deploy the canonical EntryPoint v0.8 (dev chain only; required elsewhere), the account "
        "implementation and beacon, factory, WebAuthnValidator, SponsorPaymaster, EOAKeyValidator "
        "and GuardianExecutor to "
        "CHAIN_RPC_URL, fund the paymaster deposit and record the addresses. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rpc-url", default=None, help="default: CHAIN_RPC_URL")
        parser.add_argument(
            "--upgrade-accounts",
            action="store_true",
            help="Point the account beacon at this build's ModularSmartAccount (upgrades every "
            "account; the deployer key must own the beacon).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = services.deploy_contracts(
                rpc_url=options["rpc_url"],
                upgrade_accounts=options["upgrade_accounts"],
                log=self.stdout.write,
            )
        except deploy.DeploymentError as exc:
            raise CommandError(str(exc)) from exc
        path = services.deployments_file(settings.CHAIN_ID)
        changed = ", ".join(result.created) or "nothing"
        self.stdout.write(f"deployed: {changed}; addresses in {path}")
