from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain import deploy, services


class Command(BaseCommand):
    help = (
        "Deploy the EntryPoint (unless CHAIN_ENTRYPOINT_ADDRESS), account implementation, factory, "
        "WebAuthnValidator, SponsorPaymaster, EOAKeyValidator and GuardianExecutor to "
        "CHAIN_RPC_URL, fund the paymaster deposit and record the addresses. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rpc-url", default=None, help="default: CHAIN_RPC_URL")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = services.deploy_contracts(rpc_url=options["rpc_url"], log=self.stdout.write)
        except deploy.DeploymentError as exc:
            raise CommandError(str(exc)) from exc
        path = services.deployments_file(settings.CHAIN_ID)
        changed = ", ".join(result.created) or "nothing"
        self.stdout.write(f"deployed: {changed}; addresses in {path}")
