"""Use cases of the chain app that write state."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import transaction
from eth_utils import keccak, to_checksum_address
from web3 import Web3

from chain.client import Sender, account_from_key, connect
from chain.devtools import deploy
from chain.models import Deployment
from chain.signals import contracts_deployed


def deployments_file(chain_id: int) -> Path:
    return Path(settings.CHAIN_DEPLOYMENTS_DIR) / f"{chain_id}.json"


@transaction.atomic
def record_deployments(*, w3: Web3, chain_id: int, addresses: dict[str, str]) -> None:
    """Store the addresses in the database and in var/deployments/<chain id>.json."""
    for name, address in addresses.items():
        code = w3.eth.get_code(to_checksum_address(address))
        Deployment.objects.update_or_create(
            chain_id=chain_id,
            name=name,
            defaults={
                "address": to_checksum_address(address),
                "code_hash": "0x" + keccak(code).hex(),
            },
        )
    path = deployments_file(chain_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    content = json.dumps({name: addresses[name] for name in deploy.CONTRACT_NAMES}, indent=2) + "\n"
    if not path.exists() or path.read_text() != content:
        path.write_text(content)


def deploy_contracts(
    *,
    rpc_url: str | None = None,
    deployer_key: str | None = None,
    sponsor_key: str | None = None,
    paymaster_deposit_wei: int | None = None,
    upgrade_accounts: bool = False,
    log: Callable[[str], None] = lambda _message: None,
) -> deploy.DeploymentResult:
    """Deploy what is missing on the configured chain and record every address (idempotent);
    then tell the apps above (contracts_deployed: people who signed up meanwhile get accounts).

    With `upgrade_accounts`, the account beacon is pointed at this build's implementation.
    """
    w3 = connect(rpc_url)
    chain_id = w3.eth.chain_id
    if chain_id != settings.CHAIN_ID:
        raise deploy.DeploymentError(
            f"the chain at the RPC URL has id {chain_id}, CHAIN_ID is {settings.CHAIN_ID}"
        )
    sender = Sender(w3=w3, account=account_from_key(deployer_key or settings.CHAIN_DEPLOYER_KEY))
    sponsor = account_from_key(sponsor_key or settings.CHAIN_SPONSOR_KEY)
    result = deploy.deploy_all(
        sender=sender,
        sponsor_address=sponsor.address,
        paymaster_deposit_wei=(
            settings.CHAIN_PAYMASTER_DEPOSIT_WEI
            if paymaster_deposit_wei is None
            else paymaster_deposit_wei
        ),
        upgrade_accounts=upgrade_accounts,
        log=log,
    )
    record_deployments(w3=w3, chain_id=chain_id, addresses=result.addresses)
    contracts_deployed.send(sender=Deployment, chain_id=chain_id)
    return result
