"""The operation pipeline: a change on chain from creation to `confirmed` (or `failed`/`expired`).

A passkey-signed operation is built here (an EntryPoint v0.8 user operation, sponsored by the
portal's paymaster), its hash becomes the challenge of a WebAuthn ceremony, and the assertion the
browser returns is verified off-chain and encoded for the WebAuthnValidator. A relayer call (an
account deployment) needs no signature. Either way the operation ends `signed`, with the call the
relayer makes (`tx_to`, `tx_data`), and Celery takes it from there:

- submit: simulate (a revert fails the operation, no nonce burned); then, in one transaction, take
  the relayer's next nonce under its row lock, sign the transaction, store the raw bytes and the
  hash and move to `submitted`; only then send. A crash after the commit loses nothing: the stored
  bytes are sent again, never a second transaction.
- track: a receipt → `included` (or `failed` with the user operation's revert reason) → `confirmed`
  at CHAIN_CONFIRMATIONS deep with the block still on the chain (else back to `submitted`); a
  transaction the node does not know is sent again unchanged; one pending longer than
  CHAIN_REPLACE_AFTER_SECONDS is replaced with higher fees at the same nonce.

The database is the durable queue: a task is only a nudge, and the beat tick (`tick`) re-dispatches
what nobody picked up. Every status change goes through chain.operations.transition.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import requests
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from eth_abi import decode
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions import TypedTransaction
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.logs import DISCARD

from accounts.models import AuditEvent, SmartAccount, User
from accounts.services import record_event, refusals_recorded
from chain import userops
from chain.client import account_from_key, connect, contract
from chain.models import ChainOperation, RelayerAccount
from chain.operations import TransitionRefused, transition
from chain.passkey_signatures import passkey_signature
from chain.selectors import deployment_address
from passkeys import webauthn
from passkeys.models import Ceremony, Passkey
from passkeys.services import consume_ceremony, verify_passkey_assertion
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError

logger = logging.getLogger(__name__)
Status = ChainOperation.Status

# Generous fixed gas limits for the portal's own user operations (passkey validation through
# P256VERIFY, one validator call); unused gas is not charged beyond the EntryPoint's 10% penalty.
VERIFICATION_GAS_LIMIT = 600_000
CALL_GAS_LIMIT = 400_000
PRE_VERIFICATION_GAS = 80_000
PAYMASTER_VERIFICATION_GAS_LIMIT = 80_000
MIN_PRIORITY_FEE = 1_000_000  # wei: 0.001 gwei, the floor on a dev chain
# A replacement must pay at least 12.5% more than the transaction it replaces (geth, anvil).
REPLACEMENT_BUMP_NUMERATOR, REPLACEMENT_BUMP_DENOMINATOR = 1125, 1000
# Signed operations idle this long are re-dispatched by the tick.
STALE_SIGNED = timedelta(seconds=10)
TRACK_BATCH = 200

UINT192_MAX = 2**192 - 1


class ChainUnavailable(Exception):
    """The RPC endpoint did not answer (or answered with a server error): try again later."""


@dataclass(frozen=True)
class Outcome:
    """What a submit or track step left behind: the status, and whether to look again later."""

    status: str
    pending: bool


# --- chain access --------------------------------------------------------------------------------


@cache
def _web3(rpc_url: str) -> Web3:
    return connect(rpc_url, timeout=10)


def chain() -> Web3:
    return _web3(settings.CHAIN_RPC_URL)


def relayer() -> LocalAccount:
    return account_from_key(settings.CHAIN_RELAYER_KEY)


def _rpc_errors() -> tuple[type[BaseException], ...]:
    return (requests.RequestException, ConnectionError, TimeoutError)


def _call_chain(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run one RPC call, turning transport failures into ChainUnavailable."""
    try:
        return function(*args, **kwargs)
    except _rpc_errors() as exc:
        raise ChainUnavailable(f"{type(exc).__name__}: {exc}") from exc


def _entry_point(w3: Web3) -> Any:
    return contract(w3, "EntryPoint", deployment_address("EntryPoint"))


# --- user operations as JSON ---------------------------------------------------------------------


def user_operation_to_json(op: userops.PackedUserOperation) -> dict[str, str]:
    return {
        "sender": op.sender,
        "nonce": hex(op.nonce),
        "initCode": "0x" + op.init_code.hex(),
        "callData": "0x" + op.call_data.hex(),
        "accountGasLimits": "0x" + op.account_gas_limits.hex(),
        "preVerificationGas": hex(op.pre_verification_gas),
        "gasFees": "0x" + op.gas_fees.hex(),
        "paymasterAndData": "0x" + op.paymaster_and_data.hex(),
        "signature": "0x" + op.signature.hex(),
    }


def user_operation_from_json(data: dict[str, str]) -> userops.PackedUserOperation:
    def raw(name: str) -> bytes:
        return bytes.fromhex(data[name].removeprefix("0x"))

    return userops.PackedUserOperation(
        sender=data["sender"],
        nonce=int(data["nonce"], 16),
        init_code=raw("initCode"),
        call_data=raw("callData"),
        account_gas_limits=raw("accountGasLimits"),
        pre_verification_gas=int(data["preVerificationGas"], 16),
        gas_fees=raw("gasFees"),
        paymaster_and_data=raw("paymasterAndData"),
        signature=raw("signature"),
    )


def handle_ops_data(op: userops.PackedUserOperation, *, beneficiary: str) -> bytes:
    entry_point = _entry_point(chain())
    data = entry_point.encode_abi(
        "handleOps", args=[[op.as_tuple()], to_checksum_address(beneficiary)]
    )
    return bytes.fromhex(data.removeprefix("0x"))


# --- creating operations -------------------------------------------------------------------------


def _existing(idempotency_key: str) -> ChainOperation | None:
    return ChainOperation.objects.filter(idempotency_key=idempotency_key).first()


def _fees(w3: Web3) -> tuple[int, int]:
    """(maxFeePerGas, maxPriorityFeePerGas) for a transaction sent now."""
    block = _call_chain(w3.eth.get_block, "latest")
    base_fee = int(block.get("baseFeePerGas", 0) or 0)
    try:
        priority = max(int(_call_chain(lambda: w3.eth.max_priority_fee)), MIN_PRIORITY_FEE)
    except Web3RPCError:
        priority = MIN_PRIORITY_FEE
    return 2 * base_fee + priority, priority


def create_user_operation(
    *,
    user: User,
    account: SmartAccount,
    kind: str,
    call_data: bytes,
    idempotency_key: str,
    details: dict[str, Any],
) -> ChainOperation:
    """A sponsored user operation for the user's deployed account, waiting for their passkey.

    The same idempotency key returns the operation already created, unchanged.
    """
    existing = _existing(idempotency_key)
    if existing is not None:
        return existing
    if account.user_id != user.pk:
        raise NotFound("account_not_found", "No such account.")
    if account.status != SmartAccount.Status.DEPLOYED:
        raise Conflict("account_not_deployed", "The account is not deployed on chain yet.")

    w3 = chain()
    chain_id = settings.CHAIN_ID
    entry_point = _entry_point(w3)
    sender = to_checksum_address(account.address)
    # A random key per operation: two pending operations of one account never share a nonce.
    key = secrets.randbits(192) or 1
    try:
        sequence = int(_call_chain(entry_point.functions.getNonce(sender, key).call))
        max_fee, priority = _fees(w3)
        chain_now = int(_call_chain(w3.eth.get_block, "latest")["timestamp"])
    except ChainUnavailable as exc:
        logger.warning("create_user_operation: chain unavailable: %s", exc)
        raise PortalError(
            "chain_unavailable", "The chain cannot be reached right now: try again.", status=503
        ) from exc
    op = userops.build_user_operation(
        sender=sender,
        nonce=userops.nonce(key=key, sequence=sequence),
        call_data=call_data,
        verification_gas_limit=VERIFICATION_GAS_LIMIT,
        call_gas_limit=CALL_GAS_LIMIT,
        pre_verification_gas=PRE_VERIFICATION_GAS,
        max_fee_per_gas=max_fee,
        max_priority_fee_per_gas=priority,
    )
    # The window opens a minute early: a node's pending block may be stamped with its wall clock,
    # behind the latest block's timestamp on a chain that mined many blocks in a second.
    opens = max(0, min(chain_now, int(timezone.now().timestamp())) - 60)
    op = userops.sponsor_user_operation(
        op,
        paymaster=deployment_address("SponsorPaymaster"),
        sponsor_key=settings.CHAIN_SPONSOR_KEY,
        chain_id=chain_id,
        valid_after=opens,
        valid_until=chain_now + settings.CHAIN_SPONSOR_WINDOW_SECONDS,
        verification_gas_limit=PAYMASTER_VERIFICATION_GAS_LIMIT,
    )
    op_hash = userops.user_operation_hash(op, entry_point=entry_point.address, chain_id=chain_id)
    now = timezone.now()
    expires_at = now + settings.PORTAL_CEREMONY_TTL
    try:
        with transaction.atomic():
            ceremony = Ceremony.objects.create(
                purpose=Ceremony.Purpose.OPERATION,
                user=user,
                challenge=op_hash,
                created_at=now,
                expires_at=expires_at,
            )
            return ChainOperation.objects.create(
                kind=kind,
                status=Status.AWAITING_SIGNATURE,
                chain_id=chain_id,
                account=account,
                user=user,
                idempotency_key=idempotency_key,
                details=details,
                user_operation=user_operation_to_json(op),
                user_op_hash="0x" + op_hash.hex(),
                ceremony=ceremony,
                expires_at=expires_at,
                tx_to=entry_point.address,
                created_at=now,
            )
    except IntegrityError:
        # Created meanwhile with the same key by a concurrent request.
        found = _existing(idempotency_key)
        if found is None:
            raise
        return found


def create_relayer_call(
    *,
    kind: str,
    to: str,
    data: bytes,
    idempotency_key: str,
    user: User | None = None,
    account: SmartAccount | None = None,
    details: dict[str, Any],
) -> ChainOperation:
    """An operation the relayer sends as a plain transaction (no passkey): created `signed`,
    its submission queued when the caller's transaction commits. Idempotent by key."""
    existing = _existing(idempotency_key)
    if existing is not None:
        return existing
    now = timezone.now()
    try:
        with transaction.atomic():
            operation = ChainOperation.objects.create(
                kind=kind,
                status=Status.SIGNED,
                chain_id=settings.CHAIN_ID,
                account=account,
                user=user,
                idempotency_key=idempotency_key,
                details=details,
                tx_to=to_checksum_address(to),
                tx_data=bytes(data),
                created_at=now,
                signed_at=now,
            )
    except IntegrityError:
        found = _existing(idempotency_key)
        if found is None:
            raise
        return found
    queue_submission(operation_id=operation.pk)
    return operation


# --- signing -------------------------------------------------------------------------------------


def _own_operation(*, user: User, operation_id: int) -> ChainOperation:
    operation = (
        ChainOperation.objects.select_related("ceremony", "account")
        .filter(pk=operation_id, user=user)
        .first()
    )
    if operation is None:
        raise NotFound("operation_not_found", "No such operation.")
    return operation


def _expired_error() -> PortalError:
    return PortalError(
        "operation_expired", "This operation was not approved in time: start again.", status=410
    )


def _ensure_awaiting(operation: ChainOperation) -> None:
    """Refuse an operation that is not waiting for a signature; expire one past its time."""
    if operation.status == Status.EXPIRED:
        raise _expired_error()
    if operation.status != Status.AWAITING_SIGNATURE:
        raise Conflict(
            "operation_not_awaiting_signature", "This operation is not waiting for a signature."
        )
    if operation.expires_at is not None and operation.expires_at <= timezone.now():
        with contextlib.suppress(TransitionRefused):
            transition(
                operation_id=operation.pk, to=Status.EXPIRED, expect=Status.AWAITING_SIGNATURE
            )
        raise _expired_error()


def _active_passkeys(user: User) -> list[webauthn.CredentialDescriptor]:
    passkeys = Passkey.objects.filter(user=user, onchain=Passkey.OnChain.ACTIVE).order_by(
        "created_at", "id"
    )
    return [
        webauthn.CredentialDescriptor(
            credential_id=bytes(p.credential_id), transports=list(p.transports)
        )
        for p in passkeys
    ]


def signing_options(*, user: User, operation_id: int) -> tuple[ChainOperation, dict[str, Any]]:
    """WebAuthn request options whose challenge is the operation's hash; a used or expired
    ceremony is replaced by a fresh one (same challenge) while the operation can be signed."""
    operation = _own_operation(user=user, operation_id=operation_id)
    _ensure_awaiting(operation)
    challenge = bytes.fromhex(operation.user_op_hash.removeprefix("0x"))
    now = timezone.now()
    ceremony = operation.ceremony
    if ceremony is None or ceremony.consumed_at is not None or ceremony.expires_at <= now:
        with transaction.atomic():
            locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
            if locked.status != Status.AWAITING_SIGNATURE:
                raise Conflict(
                    "operation_not_awaiting_signature",
                    "This operation is not waiting for a signature.",
                )
            fresh = Ceremony.objects.create(
                purpose=Ceremony.Purpose.OPERATION,
                user=user,
                challenge=challenge,
                created_at=now,
                expires_at=locked.expires_at or now + settings.PORTAL_CEREMONY_TTL,
            )
            ChainOperation.objects.filter(pk=locked.pk).update(ceremony=fresh)
            operation = _own_operation(user=user, operation_id=operation_id)
    options = webauthn.authentication_options(challenge=challenge, allow=_active_passkeys(user))
    return operation, options


def sign_operation(
    *, user: User, operation_id: int, credential: dict[str, Any], client: ClientInfo
) -> ChainOperation:
    """Verify the browser's assertion over the operation's hash, encode it for the validator and
    mark the operation `signed` (its submission is queued on commit). A refusal changes nothing
    but the ceremony, which is used up as at sign-in: ask for options again to retry."""
    parsed = webauthn.parse_authentication_credential(credential)
    operation = _own_operation(user=user, operation_id=operation_id)
    _ensure_awaiting(operation)
    if operation.ceremony is None:
        raise Conflict("ceremony_used", "This approval was already used: start again.")
    ceremony = consume_ceremony(
        ceremony_id=operation.ceremony.ceremony_id, purpose=Ceremony.Purpose.OPERATION, user=user
    )
    with refusals_recorded(
        kind=AuditEvent.Kind.OPERATION_REFUSED, user=user, client=client, operation_id=operation.pk
    ):
        passkey = _verify_approval(ceremony=ceremony, credential=parsed, client=client)
    encoded = passkey_signature(
        validator=deployment_address("WebAuthnValidator"),
        authenticator_data=parsed.response.authenticator_data,
        client_data_json=parsed.response.client_data_json,
        signature_der=parsed.response.signature,
        credential_id=parsed.raw_id,
    ).encoded
    assert operation.user_operation is not None  # noqa: S101 - a user operation has one
    signed = user_operation_from_json(operation.user_operation).with_changes(signature=encoded)
    with transaction.atomic():
        try:
            operation = transition(
                operation_id=operation.pk,
                to=Status.SIGNED,
                expect=Status.AWAITING_SIGNATURE,
                user_operation=user_operation_to_json(signed),
                tx_data=handle_ops_data(signed, beneficiary=relayer().address),
                details={**operation.details, "signed_with_passkey_id": passkey.pk},
            )
        except TransitionRefused as exc:
            raise Conflict(
                "operation_not_awaiting_signature", "This operation is not waiting for a signature."
            ) from exc
        record_event(
            kind=AuditEvent.Kind.OPERATION_APPROVED,
            user=user,
            client=client,
            operation_id=operation.pk,
            operation_kind=operation.kind,
            passkey_id=passkey.pk,
        )
        queue_submission(operation_id=operation.pk)
    return operation


def _verify_approval(
    *, ceremony: Ceremony, credential: webauthn.AuthenticationCredential, client: ClientInfo
) -> Passkey:
    """Login's rules, and two of the chain's: the passkey is on chain, and so is the origin."""
    passkey = verify_passkey_assertion(ceremony=ceremony, credential=credential, client=client)
    if passkey.onchain != Passkey.OnChain.ACTIVE:
        raise PortalError(
            "passkey_not_on_chain", "This passkey is not active on your account on chain yet."
        )
    origin = settings.PORTAL_ORIGINS[0]
    if _client_data_origin(credential.response.client_data_json) != origin:
        raise PortalError(
            "origin_not_on_chain", f"Approve chain operations on {origin}: keys are bound to it."
        )
    return passkey


def _client_data_origin(client_data_json: bytes) -> str | None:
    try:
        value = json.loads(client_data_json).get("origin")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


# --- dispatch ------------------------------------------------------------------------------------


def dispatch_submission(operation_id: int) -> bool:
    """Publish the submit task now; False (logged) when the broker cannot take it."""
    from chain.tasks import submit_operation

    try:
        submit_operation.delay(operation_id)
    except Exception:  # any broker failure: the tick dispatches it later
        logger.warning(
            "operation %s: could not queue its submission; the pipeline tick will",
            operation_id,
            exc_info=True,
        )
        return False
    return True


def queue_submission(*, operation_id: int) -> None:
    """Queue the submission when the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: dispatch_submission(operation_id))


# --- submission ----------------------------------------------------------------------------------


def _revert_data(exc: BaseException) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""


FAILED_OP = keccak(text="FailedOp(uint256,string)")[:4]
FAILED_OP_WITH_REVERT = keccak(text="FailedOpWithRevert(uint256,string,bytes)")[:4]
ERROR_STRING = keccak(text="Error(string)")[:4]


def decode_revert(data: bytes, fallback: str = "reverted") -> str:
    """A readable reason from revert data: the EntryPoint's FailedOp, Error(string), or hex."""
    try:
        if data[:4] == FAILED_OP:
            (_, reason) = decode(["uint256", "string"], data[4:])
            return str(reason)
        if data[:4] == FAILED_OP_WITH_REVERT:
            (_, reason, inner) = decode(["uint256", "string", "bytes"], data[4:])
            return f"{reason} (0x{bytes(inner).hex()})" if inner else str(reason)
        if data[:4] == ERROR_STRING:
            (reason,) = decode(["string"], data[4:])
            return str(reason)
    except Exception:  # noqa: S110 - undecodable: shown as hex below
        pass
    return f"{fallback}: 0x{data.hex()}" if data else fallback


def _simulate(w3: Web3, operation: ChainOperation, sender: str) -> tuple[int | None, str]:
    """(gas limit, "") when the call would succeed now, (None, reason) when it reverts."""
    tx = {"from": sender, "to": operation.tx_to, "data": bytes(operation.tx_data)}
    try:
        estimate = int(_call_chain(w3.eth.estimate_gas, tx, "pending"))
    except ContractLogicError as exc:
        return None, decode_revert(_revert_data(exc), str(exc.message or "reverted"))
    except Web3RPCError as exc:
        message = str(exc)
        if "revert" in message.lower():
            return None, decode_revert(_revert_data(exc), message)
        raise ChainUnavailable(message) from exc
    return estimate * 3 // 2 + 50_000, ""


def _sign(
    *, operation: ChainOperation, nonce: int, gas: int, max_fee: int, priority: int
) -> tuple[bytes, str]:
    tx = {
        "type": 2,
        "chainId": settings.CHAIN_ID,
        "nonce": nonce,
        "to": to_checksum_address(operation.tx_to),
        "data": bytes(operation.tx_data),
        "value": 0,
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": priority,
    }
    signed = relayer().sign_transaction(tx)
    return bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex()


def _take_nonce(w3: Web3, address: str) -> int:
    """The relayer's next nonce, under its row lock (call inside a transaction). The counter
    starts at the chain's pending nonce and skips ahead if the key was used elsewhere; it never
    goes back, so two operations never share one."""
    chain_id = settings.CHAIN_ID
    if not RelayerAccount.objects.filter(chain_id=chain_id, address=address).exists():
        pending = int(_call_chain(w3.eth.get_transaction_count, address, "pending"))
        try:
            with transaction.atomic():
                RelayerAccount.objects.create(
                    chain_id=chain_id, address=address, next_nonce=pending
                )
        except IntegrityError:
            pass  # another worker created it first
    row = RelayerAccount.objects.select_for_update().get(chain_id=chain_id, address=address)
    on_chain = int(_call_chain(w3.eth.get_transaction_count, address, "pending"))
    nonce = max(row.next_nonce, on_chain)
    row.next_nonce = nonce + 1
    row.save(update_fields=["next_nonce"])
    return nonce


def _send(w3: Web3, operation_id: int, raw: bytes) -> None:
    """Send stored bytes; a node that already has them is fine, anything else is recorded and the
    tracker sends them again."""
    try:
        _call_chain(w3.eth.send_raw_transaction, raw)
    except Web3RPCError as exc:
        message = str(exc)
        lowered = message.lower()
        if "already known" in lowered or "already imported" in lowered:
            return
        logger.warning("operation %s: send refused: %s", operation_id, message)
        ChainOperation.objects.filter(pk=operation_id).update(last_error=message[:2000])


def submit(*, operation_id: int) -> Outcome:
    """Send a `signed` operation (or look after one already sent): see the module docstring."""
    operation = ChainOperation.objects.filter(pk=operation_id).first()
    if operation is None:
        return Outcome("missing", pending=False)
    if operation.status != Status.SIGNED:
        return track(operation_id=operation_id)
    w3 = chain()
    sender = relayer().address
    gas, reason = _simulate(w3, operation, sender)
    if gas is None:
        try:
            failed = transition(
                operation_id=operation_id,
                to=Status.FAILED,
                expect=Status.SIGNED,
                revert_reason=reason,
                last_error=f"simulation reverted: {reason}",
            )
        except TransitionRefused as exc:
            return Outcome(exc.operation.status, pending=False)
        return Outcome(failed.status, pending=False)
    max_fee, priority = _fees(w3)
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation_id)
        if locked.status != Status.SIGNED:
            sent_by_someone_else = True
        else:
            sent_by_someone_else = False
            nonce = _take_nonce(w3, sender)
            raw, tx_hash = _sign(
                operation=locked, nonce=nonce, gas=gas, max_fee=max_fee, priority=priority
            )
            transition(
                operation_id=operation_id,
                to=Status.SUBMITTED,
                expect=Status.SIGNED,
                relayer=sender,
                relayer_nonce=nonce,
                max_fee_per_gas=max_fee,
                max_priority_fee_per_gas=priority,
                raw_transaction=raw,
                tx_hash=tx_hash,
                tx_hashes=[tx_hash],
                attempts=locked.attempts + 1,
            )
    if sent_by_someone_else:
        return track(operation_id=operation_id)
    # Stored and committed: from here a crash means sending these same bytes again.
    _send(w3, operation_id, raw)
    return track(operation_id=operation_id)


# --- tracking ------------------------------------------------------------------------------------


def _receipt(w3: Web3, tx_hash: str) -> Any:
    try:
        return _call_chain(w3.eth.get_transaction_receipt, tx_hash)
    except TransactionNotFound:
        return None


def _known(w3: Web3, tx_hash: str) -> bool:
    try:
        return _call_chain(w3.eth.get_transaction, tx_hash) is not None
    except TransactionNotFound:
        return False


def _user_operation_result(w3: Web3, operation: ChainOperation, receipt: Any) -> str | None:
    """None when the user operation succeeded; its revert reason when it did not."""
    if not operation.user_op_hash:
        return None
    entry_point = _entry_point(w3)
    wanted = bytes.fromhex(operation.user_op_hash.removeprefix("0x"))
    events = entry_point.events.UserOperationEvent().process_receipt(receipt, errors=DISCARD)
    mine = [e for e in events if bytes(e["args"]["userOpHash"]) == wanted]
    if not mine:
        return "the transaction did not execute the user operation"
    if mine[0]["args"]["success"]:
        return None
    reverts = entry_point.events.UserOperationRevertReason().process_receipt(
        receipt, errors=DISCARD
    )
    for event in reverts:
        if bytes(event["args"]["userOpHash"]) == wanted:
            return decode_revert(bytes(event["args"]["revertReason"]), "execution reverted")
    return "execution reverted"


def _confirmations(w3: Web3, block_number: int) -> int:
    head = int(_call_chain(lambda: w3.eth.block_number))
    return head - block_number + 1


def track(*, operation_id: int) -> Outcome:
    """Move a `submitted` or `included` operation on as far as the chain allows now."""
    operation = ChainOperation.objects.filter(pk=operation_id).first()
    if operation is None:
        return Outcome("missing", pending=False)
    w3 = chain()
    if operation.status == Status.SUBMITTED:
        operation = _track_submitted(w3, operation)
    if operation.status == Status.INCLUDED:
        operation = _track_included(w3, operation)
    return Outcome(
        operation.status, pending=operation.status in (Status.SUBMITTED, Status.INCLUDED)
    )


def _safe_transition(operation: ChainOperation, **kwargs: Any) -> ChainOperation:
    try:
        return transition(operation_id=operation.pk, expect=operation.status, **kwargs)
    except TransitionRefused as exc:
        return exc.operation


def _track_submitted(w3: Web3, operation: ChainOperation) -> ChainOperation:
    hashes = list(operation.tx_hashes or [operation.tx_hash])
    for tx_hash in reversed(hashes):
        receipt = _receipt(w3, tx_hash)
        if receipt is None or receipt.get("blockNumber") is None:
            continue
        where = {
            "tx_hash": tx_hash,
            "block_number": int(receipt["blockNumber"]),
            "block_hash": "0x" + bytes(receipt["blockHash"]).hex(),
        }
        if receipt["status"] != 1:
            return _safe_transition(
                operation,
                to=Status.FAILED,
                revert_reason="the transaction reverted",
                last_error="the transaction reverted on chain",
                **where,
            )
        reason = _user_operation_result(w3, operation, receipt)
        if reason is not None:
            return _safe_transition(
                operation, to=Status.FAILED, revert_reason=reason, last_error=reason, **where
            )
        return _safe_transition(operation, to=Status.INCLUDED, last_error="", **where)

    if not any(_known(w3, tx_hash) for tx_hash in hashes):
        latest_nonce = int(_call_chain(w3.eth.get_transaction_count, operation.relayer, "latest"))
        if operation.relayer_nonce is not None and latest_nonce > operation.relayer_nonce:
            # Our nonce was used by a transaction that is not ours. If that transaction (or any)
            # already executed our user operation, follow it; otherwise send with a new nonce.
            landed = _executed_by(w3, operation)
            if landed is None:
                return _resubmit_with_new_nonce(w3, operation)
            if not landed:
                ChainOperation.objects.filter(pk=operation.pk).update(
                    last_error="the user operation was executed by a transaction not found"
                )
                return ChainOperation.objects.get(pk=operation.pk)
            followed, _changed = _resubmit_unless_moved(
                operation, tx_hash=landed, tx_hashes=[*operation.tx_hashes, landed]
            )
            return followed
        # The node lost it (restarted, dropped from its pool): the same bytes again.
        logger.info("operation %s: transaction unknown to the node, sending it again", operation.pk)
        ChainOperation.objects.filter(pk=operation.pk).update(attempts=operation.attempts + 1)
        _send(w3, operation.pk, bytes(operation.raw_transaction or b""))
        return ChainOperation.objects.get(pk=operation.pk)

    pending_for = timezone.now() - (operation.submitted_at or operation.updated_at)
    if pending_for.total_seconds() >= settings.CHAIN_REPLACE_AFTER_SECONDS:
        return _replace(w3, operation)
    return operation


def _bump(old: int | None, floor: int) -> int:
    bumped = -(-(old or 0) * REPLACEMENT_BUMP_NUMERATOR // REPLACEMENT_BUMP_DENOMINATOR)
    return max(bumped, floor, (old or 0) + 1)


USER_OPERATION_EVENT = (
    "0x"
    + keccak(text="UserOperationEvent(bytes32,address,address,uint256,bool,uint256,uint256)").hex()
)
# How far back to look for the transaction that executed a user operation (blocks).
EXECUTED_LOOKBACK_BLOCKS = 5000


def _executed_by(w3: Web3, operation: ChainOperation) -> str | None:
    """For a user operation the EntryPoint has already consumed the nonce of: the hash of the
    transaction that executed it ("" when not found nearby). None when it has not been executed
    (or the operation is a plain relayer call)."""
    if not operation.user_operation or not operation.user_op_hash:
        return None
    op = user_operation_from_json(operation.user_operation)
    key, sequence = op.nonce >> 64, op.nonce & (2**64 - 1)
    entry_point = _entry_point(w3)
    if int(_call_chain(entry_point.functions.getNonce(op.sender, key).call)) <= sequence:
        return None
    head = int(_call_chain(lambda: w3.eth.block_number))
    logs = _call_chain(
        w3.eth.get_logs,
        {
            "address": entry_point.address,
            "fromBlock": max(0, head - EXECUTED_LOOKBACK_BLOCKS),
            "toBlock": head,
            "topics": [USER_OPERATION_EVENT, operation.user_op_hash],
        },
    )
    return "0x" + bytes(logs[-1]["transactionHash"]).hex() if logs else ""


def _stored_gas(operation: ChainOperation) -> int:
    """The gas limit of the transaction last signed for the operation."""
    raw = bytes(operation.raw_transaction or b"")
    return int(TypedTransaction.from_bytes(HexBytes(raw)).as_dict()["gas"])


def _replace(w3: Web3, operation: ChainOperation) -> ChainOperation:
    """The same call at the same nonce with at least 12.5% higher fees; every hash is kept."""
    max_fee, priority = _fees(w3)
    new_priority = _bump(operation.max_priority_fee_per_gas, priority)
    new_max_fee = max(_bump(operation.max_fee_per_gas, max_fee), new_priority)
    assert operation.relayer_nonce is not None  # noqa: S101 - submitted operations have one
    raw, tx_hash = _sign(
        operation=operation,
        nonce=operation.relayer_nonce,
        gas=_stored_gas(operation),
        max_fee=new_max_fee,
        priority=new_priority,
    )
    replaced, changed = _resubmit_unless_moved(
        operation,
        raw_transaction=raw,
        tx_hash=tx_hash,
        tx_hashes=[*operation.tx_hashes, tx_hash],
        max_fee_per_gas=new_max_fee,
        max_priority_fee_per_gas=new_priority,
        attempts=operation.attempts + 1,
    )
    if changed:
        logger.info("operation %s: replaced %s with %s", operation.pk, operation.tx_hash, tx_hash)
        _send(w3, operation.pk, raw)
    return replaced


def _resubmit_unless_moved(operation: ChainOperation, **fields: Any) -> tuple[ChainOperation, bool]:
    """SUBMITTED → SUBMITTED with `fields`, unless someone else (the tick and a task tracking the
    same operation) changed its status or transaction meanwhile: then (their version, False)."""
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
        if locked.status != Status.SUBMITTED or locked.tx_hash != operation.tx_hash:
            return locked, False
        return (
            transition(
                operation_id=operation.pk, to=Status.SUBMITTED, expect=Status.SUBMITTED, **fields
            ),
            True,
        )


def _resubmit_with_new_nonce(w3: Web3, operation: ChainOperation) -> ChainOperation:
    sender = relayer().address
    gas, reason = _simulate(w3, operation, sender)
    if gas is None:
        return _safe_transition(
            operation,
            to=Status.FAILED,
            revert_reason=reason,
            last_error=f"simulation reverted: {reason}",
        )
    max_fee, priority = _fees(w3)
    with transaction.atomic():
        locked = ChainOperation.objects.select_for_update().get(pk=operation.pk)
        if locked.status != Status.SUBMITTED or locked.tx_hash != operation.tx_hash:
            return locked
        nonce = _take_nonce(w3, sender)
        raw, tx_hash = _sign(
            operation=locked, nonce=nonce, gas=gas, max_fee=max_fee, priority=priority
        )
        updated = transition(
            operation_id=locked.pk,
            to=Status.SUBMITTED,
            expect=Status.SUBMITTED,
            relayer_nonce=nonce,
            raw_transaction=raw,
            tx_hash=tx_hash,
            tx_hashes=[*locked.tx_hashes, tx_hash],
            max_fee_per_gas=max_fee,
            max_priority_fee_per_gas=priority,
            attempts=locked.attempts + 1,
        )
    _send(w3, updated.pk, raw)
    return updated


def _track_included(w3: Web3, operation: ChainOperation) -> ChainOperation:
    assert operation.block_number is not None  # noqa: S101 - included operations have one
    block = _call_chain(w3.eth.get_block, operation.block_number)
    on_chain = block is not None and "0x" + bytes(block["hash"]).hex() == operation.block_hash
    if not on_chain:
        logger.warning(
            "operation %s: block %s reorganised away", operation.pk, operation.block_hash
        )
        return _safe_transition(operation, to=Status.SUBMITTED, block_number=None, block_hash="")
    if _confirmations(w3, operation.block_number) >= settings.CHAIN_CONFIRMATIONS:
        return _safe_transition(operation, to=Status.CONFIRMED)
    return operation


def note_error(*, operation_id: int, error: str) -> None:
    """Show why an operation is waiting (the chain is unreachable, ...); its status is unchanged."""
    ChainOperation.objects.filter(pk=operation_id).update(last_error=error[:2000])


# --- the tick ------------------------------------------------------------------------------------


def expire_operations() -> int:
    """Expire every operation that was not signed in time."""
    expired = 0
    stale = ChainOperation.objects.filter(
        status=Status.AWAITING_SIGNATURE, expires_at__lte=timezone.now()
    ).values_list("pk", flat=True)
    for operation_id in list(stale):
        try:
            transition(
                operation_id=operation_id, to=Status.EXPIRED, expect=Status.AWAITING_SIGNATURE
            )
            expired += 1
        except TransitionRefused:
            pass
    return expired


@dataclass(frozen=True)
class TickResult:
    expired: int
    dispatched: int
    tracked: int


def tick() -> TickResult:
    """What beat runs every CHAIN_TICK_SECONDS: expire unsigned operations, dispatch signed ones
    nobody picked up (a lost task, a broker that was down), and track the ones in flight."""
    expired = expire_operations()
    idle_since = timezone.now() - STALE_SIGNED
    waiting = ChainOperation.objects.filter(
        status=Status.SIGNED, updated_at__lte=idle_since
    ).values_list("pk", flat=True)
    dispatched = 0
    for operation_id in list(waiting[:TRACK_BATCH]):
        if not dispatch_submission(operation_id):
            break
        # Touch it, so that the next tick does not queue it again while it waits for a worker.
        ChainOperation.objects.filter(pk=operation_id, status=Status.SIGNED).update(
            updated_at=timezone.now()
        )
        dispatched += 1
    tracked = 0
    in_flight = ChainOperation.objects.filter(
        status__in=[Status.SUBMITTED, Status.INCLUDED]
    ).order_by("updated_at")
    for operation_id in list(in_flight.values_list("pk", flat=True)[:TRACK_BATCH]):
        try:
            track(operation_id=operation_id)
        except ChainUnavailable as exc:
            logger.warning("pipeline tick: chain unavailable: %s", exc)
            break
        tracked += 1
    return TickResult(expired=expired, dispatched=dispatched, tracked=tracked)


# --- queries -------------------------------------------------------------------------------------


def operations_of(*, user: User) -> QuerySet[ChainOperation]:
    """The user's operations, newest first."""
    return (
        ChainOperation.objects.filter(user=user)
        .select_related("account")
        .order_by("-created_at", "-id")
    )


def operation_for(*, user: User, operation_id: int) -> ChainOperation:
    """One of the user's operations; 404 for anyone else's."""
    return _own_operation(user=user, operation_id=operation_id)
