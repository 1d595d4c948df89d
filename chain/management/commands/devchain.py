import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlparse

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from chain import services
from chain.devtools import deploy, devnet


class Command(BaseCommand):
    help = (
        "Run the development chain: anvil on CHAIN_RPC_URL's port with its state kept in var/ "
        "(loaded at start, dumped periodically and on exit), and the contracts deployed if missing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--state", default=str(settings.CHAIN_DEVCHAIN_STATE), help="anvil state file"
        )
        parser.add_argument(
            "--dump-interval",
            type=int,
            default=settings.CHAIN_DEVCHAIN_DUMP_INTERVAL,
            help="seconds between state dumps",
        )
        parser.add_argument("--no-deploy", action="store_true", help="do not run deploycontracts")

    def handle(self, *args: Any, **options: Any) -> None:
        url = urlparse(settings.CHAIN_RPC_URL)
        if (
            url.hostname not in ("127.0.0.1", "localhost")
            or settings.CHAIN_ID != devnet.ANVIL_CHAIN_ID
        ):
            raise CommandError(
                "devchain runs anvil only for a local CHAIN_RPC_URL and CHAIN_ID 31337"
            )
        port = url.port or 8545
        anvil = devnet.start_anvil(
            host="127.0.0.1",
            port=port,
            chain_id=settings.CHAIN_ID,
            state_path=Path(options["state"]),
            state_interval=options["dump_interval"],
            output=None if options["verbosity"] > 1 else subprocess.DEVNULL,
        )
        self.stdout.write(f"anvil {anvil.url} (state {options['state']}, pid {anvil.process.pid})")

        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only forward the signal: the wait() below returns once anvil has dumped its state.
            if anvil.process.poll() is None:
                anvil.process.terminate()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            if not options["no_deploy"]:
                try:
                    services.deploy_contracts(rpc_url=anvil.url, log=self.stdout.write)
                except deploy.DeploymentError as exc:
                    self.stderr.write(f"deploycontracts failed: {exc}")
            self.stdout.write("chain ready")
            sys.stdout.flush()
            anvil.process.wait()
        finally:
            anvil.stop()
