"""Development kit for session keys on a dev chain (anvil): accounts with the SessionKeyValidator
installed, sessions created by the account, and user operations signed by session keys.

Used by the tests and the gas bench; not by the portal's request path. Creating a session "as the
account" uses anvil's account impersonation (the account calls createSession itself, as it would
in a passkey-approved operation), which keeps hundreds of generated cases fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3

from chain import session_keys, userops
from chain.client import contract
from chain.devtools import devnet
from chain.devtools.authenticator import SoftwarePasskey
from chain.devtools.devkit import Harness
from chain.session_keys import SessionSpec, SessionState


class RevertedCall(Exception):
    """An eth_call or impersonated transaction reverted with `data`."""

    def __init__(self, data: bytes) -> None:
        super().__init__(f"reverted 0x{data.hex()}")
        self.data = data


class SessionHarness(Harness):
    """A Harness whose accounts also have the SessionKeyValidator installed."""

    def __init__(self, *, w3: Web3, addresses: dict[str, str], **kwargs: Any) -> None:
        super().__init__(w3=w3, addresses=addresses, **kwargs)
        self.sessions = contract(w3, "SessionKeyValidator", addresses["SessionKeyValidator"])
        self.url: str = w3.provider.endpoint_uri  # type: ignore[attr-defined]

    # -- accounts

    def account_init_data(self, passkey: SoftwarePasskey) -> bytes:
        return userops.initialize_account_data(
            modules=[self.validator.address, self.sessions.address],
            data=[passkey.install_data(), b""],
        )

    def deploy_account_without_sessions(self, passkey: SoftwarePasskey) -> tuple[str, Any]:
        """An account with the passkey validator only (as accounts made before sessions)."""
        return self.deploy_account(passkey, init_data=super().account_init_data(passkey))

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return devnet.rpc(self.url, method, params or [])

    def call_as(self, account: str, to: str, data: bytes, *, value: int = 0) -> bytes:
        """eth_call from `account` (as the account itself would call); RevertedCall on revert."""
        tx = {
            "from": to_checksum_address(account),
            "to": to_checksum_address(to),
            "data": "0x" + data.hex(),
            "value": hex(value),
        }
        try:
            result = self.rpc("eth_call", [tx, "latest"])
        except devnet.AnvilError as exc:
            error = exc.args[1] if len(exc.args) > 1 else {}
            raise RevertedCall(
                bytes.fromhex(str(error.get("data", "0x")).removeprefix("0x"))
            ) from exc
        return bytes.fromhex(str(result).removeprefix("0x"))

    def send_as(self, account: str, to: str, data: bytes, *, gas: int = 2_000_000) -> Any:
        """A transaction from `account` through impersonation (the call is simulated first, so a
        revert raises RevertedCall with its data and sends nothing)."""
        self.call_as(account, to, data)
        self.rpc("anvil_impersonateAccount", [to_checksum_address(account)])
        try:
            tx_hash = self.rpc(
                "eth_sendTransaction",
                [
                    {
                        "from": to_checksum_address(account),
                        "to": to_checksum_address(to),
                        "data": "0x" + data.hex(),
                        "gas": hex(gas),
                    }
                ],
            )
        finally:
            self.rpc("anvil_stopImpersonatingAccount", [to_checksum_address(account)])
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
        if receipt["status"] != 1:
            raise RevertedCall(b"")
        return receipt

    # -- sessions

    @staticmethod
    def new_key() -> LocalAccount:
        key: LocalAccount = Account.create()
        return key

    def create_session(
        self, account: str, spec: SessionSpec, key: LocalAccount, *, proof: bytes | None = None
    ) -> Any:
        """The account creates the session (impersonated); RevertedCall with the refusal."""
        if proof is None:
            proof = session_keys.session_proof(spec=spec, account=account, signer_key=key.key)
        data = session_keys.create_session_data(spec=spec, proof=proof)
        return self.send_as(account, self.sessions.address, data)

    def state(self, account: str, spec: SessionSpec) -> SessionState:
        raw = self.sessions.functions.sessionState(
            to_checksum_address(account), spec.as_tuple()
        ).call()
        return SessionState.from_tuple(raw)

    def period_ids(self, spec: SessionSpec, call: userops.Call, *, now: int) -> list[int]:
        """periodIds for `call` at time `now`: the fee's, the matched policy's value limit's, and
        its constraints' (first-match, as the validator matches)."""
        ids = [session_keys.period_id(spec.fee_limit, now=now)]
        if len(call.data) >= 4:
            selector = call.data[:4]
            for policy in spec.call_policies:
                if (
                    policy.target == to_checksum_address(call.target)
                    and policy.selector == selector
                ):
                    ids.append(session_keys.period_id(policy.value_limit, now=now))
                    ids += [session_keys.period_id(c.limit, now=now) for c in policy.constraints]
                    return ids
        else:
            for transfer in spec.transfer_policies:
                if transfer.target == to_checksum_address(call.target):
                    ids.append(session_keys.period_id(transfer.value_limit, now=now))
                    return ids
        return [*ids, 0]

    def session_op(
        self,
        account: str,
        spec: SessionSpec,
        key: LocalAccount,
        call: userops.Call | None = None,
        *,
        call_data: bytes | None = None,
        period_ids: Sequence[int] | None = None,
        now: int | None = None,
        sponsored: bool = False,
        nonce: int | None = None,
        signer: LocalAccount | None = None,
        **build: Any,
    ) -> userops.PackedUserOperation:
        """A user operation making `call` (or raw account `call_data`) signed by the session key
        (or by `signer`, to forge one)."""
        if call is None and (call_data is None or period_ids is None):
            raise ValueError("give the call, or the call data and the period ids")
        if call_data is None:
            assert call is not None  # noqa: S101 (for mypy)
            call_data = userops.execute_call_data(
                target=call.target, value=call.value, data=call.data
            )
        if period_ids is None:
            assert call is not None  # noqa: S101 (for mypy)
            period_ids = self.period_ids(spec, call, now=self.now() if now is None else now)
        if nonce is None:
            key_id = session_keys.nonce_key(spec.signer) if spec.signer != ZERO else 0
            nonce = self.next_nonce(account, key_id)
        op = self.build(account, call_data, nonce=nonce, **build)
        if sponsored:
            op = self.sponsor(op)
        return session_keys.sign_session_operation(
            op,
            validator=self.sessions.address,
            spec=spec,
            signer_key=(signer or key).key,
            period_ids=period_ids,
            entry_point=self.entry_point.address,
            chain_id=self.chain_id,
        )


ZERO = "0x0000000000000000000000000000000000000000"
