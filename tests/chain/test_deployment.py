"""deploycontracts (idempotent, recorded in the database and var/deployments), compilecontracts
--check, and the chain settings."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from web3 import Web3

from chain import artifacts, selectors
from chain.client import Sender, account_from_key, connect, contract
from chain.devtools import compiler, deploy, devnet
from chain.devtools.devkit import ANVIL_KEYS
from chain.models import Deployment

pytestmark = pytest.mark.chain


@pytest.fixture
def fresh_anvil() -> Any:
    node = devnet.start_anvil()
    yield node
    node.stop()


@pytest.mark.django_db
def test_deploycontracts_deploys_once_and_records_the_addresses(
    fresh_anvil: devnet.Anvil, settings: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.CHAIN_DEPLOYMENTS_DIR = tmp_path
    call_command("deploycontracts", rpc_url=fresh_anvil.url)
    first = capsys.readouterr().out
    assert (
        "deployed: EntryPoint, ModularSmartAccount, AccountBeacon, MSAFactory, WebAuthnValidator, "
        "SponsorPaymaster, EOAKeyValidator, GuardianExecutor, SessionKeyValidator" in first
    )
    assert "P256VERIFY" not in first  # anvil has the precompile

    recorded = json.loads((tmp_path / "31337.json").read_text())
    assert list(recorded) == list(deploy.CONTRACT_NAMES)
    assert selectors.deployment_addresses(chain_id=31337) == recorded
    w3 = connect(fresh_anvil.url)
    for address in recorded.values():
        assert w3.eth.get_code(Web3.to_checksum_address(address))
    entry_point = contract(w3, "EntryPoint", recorded["EntryPoint"])
    deposit = entry_point.functions.balanceOf(recorded["SponsorPaymaster"]).call()
    assert deposit == settings.CHAIN_PAYMASTER_DEPOSIT_WEI
    # The guardian executor adds keys to the portal's own validators.
    executor = contract(w3, "GuardianExecutor", recorded["GuardianExecutor"])
    assert executor.functions.WEBAUTHN_VALIDATOR().call() == recorded["WebAuthnValidator"]
    assert executor.functions.EOA_VALIDATOR().call() == recorded["EOAKeyValidator"]
    block = w3.eth.block_number

    call_command("deploycontracts", rpc_url=fresh_anvil.url)
    assert "deployed: nothing" in capsys.readouterr().out
    assert w3.eth.block_number == block  # no transaction at all
    assert Deployment.objects.count() == len(deploy.CONTRACT_NAMES)
    assert json.loads((tmp_path / "31337.json").read_text()) == recorded


def test_addresses_are_deterministic(addresses: dict[str, str], w3: Web3) -> None:
    assert addresses["EntryPoint"] == "0x4337084D9E255Ff0702461CF8895CE9E3b5Ff108"
    # The published EntryPoint v0.8, not a build of ours.
    published = json.loads(
        (compiler.NODE_MODULES / compiler.PUBLISHED_ARTIFACTS["EntryPoint"]).read_text()
    )
    assert artifacts.bytecode("EntryPoint") == bytes.fromhex(published["bytecode"][2:])
    assert (
        contract(w3, "EntryPoint", addresses["EntryPoint"]).functions.senderCreator().call()
        != "0x" + "00" * 20
    )
    assert addresses["WebAuthnValidator"] == deploy.create2_address(
        deploy.init_code("WebAuthnValidator", [], [])
    )
    assert addresses["GuardianExecutor"] == deploy.create2_address(
        deploy.init_code(
            "GuardianExecutor",
            ["address", "address"],
            [addresses["WebAuthnValidator"], addresses["EOAKeyValidator"]],
        )
    )
    assert addresses["SessionKeyValidator"] == deploy.create2_address(
        deploy.init_code("SessionKeyValidator", [], [])
    )


def test_the_entry_point_is_put_at_its_canonical_address_even_without_a_create2_deployer() -> None:
    node = devnet.start_anvil(extra_args=["--disable-default-create2-deployer"])
    try:
        w3 = connect(node.url)
        assert not w3.eth.get_code(Web3.to_checksum_address(deploy.CREATE2_DEPLOYER))
        result = deploy.deploy_all(
            sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
            sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
        )
        assert result.addresses["EntryPoint"] == deploy.ENTRY_POINT_ADDRESS
        assert w3.eth.get_code(Web3.to_checksum_address(deploy.ENTRY_POINT_ADDRESS))
    finally:
        node.stop()


def test_other_chains_must_have_the_canonical_entry_point() -> None:
    node = devnet.start_anvil(chain_id=8453)
    try:
        w3 = connect(node.url)
        with pytest.raises(deploy.DeploymentError, match=r"no EntryPoint v0\.8 at its canonical"):
            deploy.deploy_all(
                sender=Sender(w3=w3, account=account_from_key(ANVIL_KEYS[0])),
                sponsor_address=account_from_key(ANVIL_KEYS[1]).address,
            )
        assert w3.eth.get_transaction_count(account_from_key(ANVIL_KEYS[0]).address) == 0
    finally:
        node.stop()


def test_check_reports_artifacts_that_differ_from_the_sources() -> None:
    on_disk = [
        compiler.Artifact(name=p.stem, source="", data=json.loads(p.read_text()))
        for p in sorted(compiler.BUILD_DIR.glob("*.json"))
    ]
    assert compiler.differences(on_disk) == []
    tampered = [
        *on_disk[1:],
        compiler.Artifact(
            name=on_disk[0].name, source="", data={**on_disk[0].data, "bytecode": "0x00"}
        ),
    ]
    assert compiler.differences(tampered) == [f"{on_disk[0].name}: differs from a fresh compile"]
    assert compiler.differences(on_disk[1:]) == [
        f"{on_disk[0].name}: no longer produced by the sources"
    ]


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CHAIN_ID": "8453"}, "CHAIN_DEPLOYER_KEY must be set"),
        (
            {
                "CHAIN_ID": "8453",
                "CHAIN_DEPLOYER_KEY": ANVIL_KEYS[0],
                "CHAIN_SPONSOR_KEY": "0x" + "11" * 32,
            },
            "public anvil key",
        ),
    ],
)
def test_settings_refuse_missing_or_dev_keys_off_anvil(
    environment: dict[str, str], message: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHAIN_")} | environment
    env["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    result = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.CHAIN_ID"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.returncode != 0
    assert message in result.stderr
