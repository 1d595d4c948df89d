"""The event indexer: reads the logs of the portal's contracts into ChainEvent rows, and tells the
apps that keep read models on them (each passkey's on-chain state, each account's deployment)
what changed, through chain.signals.events_indexed: their receivers run in the batch's transaction.

One run (`index_chain`) walks from the cursor to the head in batches. Each batch is one database
transaction under a lock on the chain's cursor row:

1. Reorg check: the hash stored for the cursor's block must still be the chain's. If not, the
   newest stored checkpoint that still is marks the fork; every event above it is deleted, the
   read models follow, and the cursor goes back to it (nothing stored is still canonical: the
   chain is read again from the start).
2. Read the logs from (cursor + 1 - CHAIN_REORG_MARGIN) to at most CHAIN_INDEXER_BATCH_BLOCKS
   blocks past the cursor, with the hash of the batch's last block read before and after: if it
   changed (a reorg while reading), the batch is thrown away and read again.
3. Upsert: a log is identified by (chain, block hash, log index), so a log read twice is stored
   once; a stored event in the range that the chain no longer has is deleted.
4. Store the hash of the batch's last block (a checkpoint) and move the cursor there.
5. Send events_indexed with the (name, account, credential id) of every event added or removed.

Indexed: the events listed in INDEXED_EVENTS, all of them for the portal's own contracts
(WebAuthnValidator's key events, SessionKeyValidator's session events, MSAFactory's
AccountDeployed, GuardianExecutor's guardian and recovery events), and EntryPoint
UserOperationEvent (those paid by the portal's SponsorPaymaster only: the EntryPoint may be the
chain's shared one). A contract of OPTIONAL_CONTRACTS that is not recorded on the chain is simply
not read. Every event is kept only when it is about
one of the portal's own accounts (WatchedAccount, registered by the app that opens accounts):
anyone can call WebAuthnValidator.onInstall and emit PasskeyCreated for any account, and such
events are not kept.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from eth_abi import decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3 import Web3
from web3.exceptions import BlockNotFound
from web3.types import RPCEndpoint

from chain import artifacts
from chain.client import connect
from chain.models import ChainEvent, IndexedBlock, IndexerCursor
from chain.selectors import chunks, deployment_addresses, watched_among
from chain.signals import events_indexed

logger = logging.getLogger(__name__)

# contract → the events of it that are indexed
INDEXED_EVENTS: dict[str, tuple[str, ...]] = {
    "WebAuthnValidator": ("PasskeyCreated", "PasskeyRemoved"),
    "SessionKeyValidator": ("SessionCreated", "SessionRevoked"),
    "MSAFactory": ("AccountDeployed",),
    "EntryPoint": ("UserOperationEvent",),
    "GuardianExecutor": (
        "GuardianProposed",
        "GuardianAdded",
        "GuardianRemoved",
        "RecoveryInitiated",
        "RecoveryFinished",
        "RecoveryDiscarded",
    ),
}
# Contracts read only when recorded on the chain (deployments made before they existed).
OPTIONAL_CONTRACTS = frozenset({"GuardianExecutor", "SessionKeyValidator"})
# The EntryPoint is shared: only the UserOperationEvents of the portal's paymaster are read.
SHARED_CONTRACTS = frozenset({"EntryPoint"})
# event → its argument that names the smart account it is about
ACCOUNT_ARGUMENT = {
    "PasskeyCreated": "keyOwner",
    "PasskeyRemoved": "keyOwner",
    "AccountDeployed": "account",
    "UserOperationEvent": "sender",
    "GuardianProposed": "account",
    "GuardianAdded": "account",
    "GuardianRemoved": "account",
    "RecoveryInitiated": "account",
    "RecoveryFinished": "account",
    "RecoveryDiscarded": "account",
    "SessionCreated": "account",
    "SessionRevoked": "account",
}
# event → its argument that names the key it is about (kept in ChainEvent.credential_id): a
# passkey's credential id, a session's hash.
KEY_ARGUMENT = {
    "PasskeyCreated": "credentialId",
    "PasskeyRemoved": "credentialId",
    "SessionCreated": "sessionHash",
    "SessionRevoked": "sessionHash",
}
# Checkpoints (batch-end block hashes) kept per chain: a reorg deeper than the oldest one makes
# the indexer read the chain again from CHAIN_INDEXER_START_BLOCK.
CHECKPOINTS_KEPT = 256
# A batch whose blocks changed while being read is read again at most this many times in a row.
MAX_RETRIES = 5
MAX_JSON_INT = 2**53 - 1
# (event name, account address, key (credential id or session hash) hex or ""): what a read model
# is looked up by.
Touched = set[tuple[str, str, str]]


class IndexerError(Exception):
    pass


class _ChainMoved(Exception):
    """The blocks being read changed under the batch: throw it away and read again."""


@dataclass
class IndexResult:
    chain_id: int
    # Why nothing was done: "not deployed" (no Deployment rows), "busy" (another run holds the
    # cursor). Empty when the run happened.
    skipped: str = ""
    head: int | None = None
    from_block: int | None = None  # the first block read
    to_block: int | None = None  # the cursor when the run ended
    batches: int = 0
    events_added: int = 0
    events_removed: int = 0  # rolled back (reorg) or no longer on chain
    reorgs: int = 0
    # read model ("passkeys", "accounts", ...) → rows its events_indexed receiver changed
    updated: dict[str, int] = field(default_factory=dict)

    @property
    def at_head(self) -> bool:
        return self.head is not None and self.to_block is not None and self.to_block >= self.head


@dataclass(frozen=True)
class _EventSpec:
    contract: str
    name: str
    topic: str  # 0x-hex topic0
    indexed: tuple[tuple[str, str], ...]  # (name, type) of the indexed arguments, in order
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    order: tuple[str, ...]  # every argument name, in ABI order
    addresses: tuple[str, ...]  # the arguments of type address


def _abi_type(item: dict[str, Any]) -> str:
    """The canonical type of an ABI input: a struct is its components' tuple type."""
    type_ = str(item["type"])
    if type_.startswith("tuple"):
        inner = ",".join(_abi_type(component) for component in item["components"])
        return f"({inner}){type_[len('tuple') :]}"
    return type_


def _event_spec(contract: str, name: str) -> _EventSpec:
    event_abi = next(
        item for item in artifacts.abi(contract) if item["type"] == "event" and item["name"] == name
    )
    inputs = event_abi["inputs"]
    return _EventSpec(
        contract=contract,
        name=name,
        topic="0x" + bytes(event_abi_to_log_topic(event_abi)).hex(),  # type: ignore[arg-type]
        indexed=tuple((item["name"], item["type"]) for item in inputs if item["indexed"]),
        data_names=tuple(item["name"] for item in inputs if not item["indexed"]),
        data_types=tuple(_abi_type(item) for item in inputs if not item["indexed"]),
        order=tuple(item["name"] for item in inputs),
        addresses=tuple(item["name"] for item in inputs if item["type"] == "address"),
    )


@dataclass
class _Source:
    """The contracts read on one chain, and how to decode their logs: straight from the JSON-RPC
    answer with eth_abi (web3's log formatters and event decoding cost ~10x more)."""

    w3: Web3
    addresses: dict[str, str]

    def __post_init__(self) -> None:
        self.contracts = [name for name in INDEXED_EVENTS if name in self.addresses]
        self.specs = {
            spec.topic: spec
            for spec in (
                _event_spec(contract, name)
                for contract in self.contracts
                for name in INDEXED_EVENTS[contract]
            )
        }
        self.topic_of = {(spec.contract, spec.name): spec.topic for spec in self.specs.values()}
        self.contract_at = {
            self.addresses[contract].lower(): contract for contract in self.contracts
        }

    def filters(self, start: int, end: int) -> list[dict[str, Any]]:
        """eth_getLogs filters: every indexed event of the portal's own contracts, and the
        EntryPoint's UserOperationEvents whose paymaster (third indexed argument) is the
        portal's."""
        paymaster_topic = "0x" + "00" * 12 + self.addresses["SponsorPaymaster"][2:].lower()
        blocks = {"fromBlock": hex(start), "toBlock": hex(end)}
        own = [contract for contract in self.contracts if contract not in SHARED_CONTRACTS]
        return [
            {
                **blocks,
                "address": [self.addresses[contract] for contract in own],
                "topics": [
                    [
                        self.topic_of[(contract, name)]
                        for contract in own
                        for name in INDEXED_EVENTS[contract]
                    ]
                ],
            },
            {
                **blocks,
                "address": self.addresses["EntryPoint"],
                "topics": [
                    self.topic_of[("EntryPoint", "UserOperationEvent")],
                    None,
                    None,
                    paymaster_topic,
                ],
            },
        ]

    def logs(self, start: int, end: int) -> list[dict[str, Any]]:
        logs: list[dict[str, Any]] = []
        for params in self.filters(start, end):
            response = self.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [params])
            if "error" in response:
                raise IndexerError(f"eth_getLogs [{start}, {end}]: {response['error']}")
            logs.extend(response["result"])
        return logs

    def decode(self, log: dict[str, Any], *, chain_id: int) -> ChainEvent | None:
        topics = [str(topic).lower() for topic in log.get("topics") or []]
        spec = self.specs.get(topics[0]) if topics else None
        contract = self.contract_at.get(str(log["address"]).lower())
        if spec is None or contract != spec.contract or log.get("removed"):
            return None
        values: dict[str, Any] = {}
        for (name, type_), topic in zip(spec.indexed, topics[1:], strict=True):
            values[name] = (
                decode([type_], _unhex(topic))[0] if type_ in _STATIC_TOPIC_TYPES else topic
            )
        values.update(
            zip(spec.data_names, decode(spec.data_types, _unhex(log["data"])), strict=True)
        )
        for name in spec.addresses:  # eth_abi gives lowercase hex
            values[name] = _checksum(values[name])
        args = {name: _jsonable(values[name]) for name in spec.order}
        raw_timestamp = log.get("blockTimestamp")
        return ChainEvent(
            chain_id=chain_id,
            block_number=int(log["blockNumber"], 16),
            block_hash=_hex(log["blockHash"]),
            block_timestamp=_timestamp(raw_timestamp) if raw_timestamp is not None else None,
            tx_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"], 16),
            contract=spec.contract,
            address=self.addresses[spec.contract],
            name=spec.name,
            args=args,
            account=str(args[ACCOUNT_ARGUMENT[spec.name]]),
            credential_id=str(args[KEY_ARGUMENT[spec.name]]) if spec.name in KEY_ARGUMENT else "",
        )


# Indexed arguments of these types are their ABI encoding in the topic; others (string, bytes,
# arrays, tuples) are only a hash there and are kept as that hash.
_STATIC_TOPIC_TYPES = frozenset(
    {"address", "bool", "bytes32", *(f"uint{n}" for n in range(8, 257, 8))}
    | {f"int{n}" for n in range(8, 257, 8)}
)


# --------------------------------------------------------------------------------------- service


def index_chain(
    *,
    w3: Web3 | None = None,
    chain_id: int | None = None,
    max_blocks: int | None = None,
    batch_blocks: int | None = None,
    from_block: int | None = None,
) -> IndexResult:
    """Index the portal's contract events from the cursor to the head of the chain.

    `max_blocks` bounds how far the cursor moves in this call (None: to the head); `batch_blocks`
    is the size of one read and one transaction (CHAIN_INDEXER_BATCH_BLOCKS). `from_block` first
    moves the cursor back so that blocks from there on are read again (operators: re-index,
    backfill); events already stored are kept or corrected, never duplicated.

    A no-op (`skipped="not deployed"`) when the chain has no recorded deployment of the contracts.
    """
    chain_id = settings.CHAIN_ID if chain_id is None else chain_id
    result = IndexResult(chain_id=chain_id)
    addresses = deployment_addresses(chain_id=chain_id)
    required = [name for name in INDEXED_EVENTS if name not in OPTIONAL_CONTRACTS]
    if any(name not in addresses for name in (*required, "SponsorPaymaster")):
        result.skipped = "not deployed"
        return result
    w3 = w3 or connect()
    if w3.eth.chain_id != chain_id:
        raise IndexerError(f"the RPC serves chain {w3.eth.chain_id}, not {chain_id}")
    source = _Source(w3=w3, addresses=addresses)
    batch = max(1, batch_blocks or settings.CHAIN_INDEXER_BATCH_BLOCKS)
    if from_block is not None:
        if from_block > w3.eth.block_number:
            raise IndexerError(f"block {from_block} is beyond the head of chain {chain_id}")
        _rewind(w3=w3, chain_id=chain_id, from_block=from_block)

    advanced = 0
    retries = 0
    while max_blocks is None or advanced < max_blocks:
        limit = batch if max_blocks is None else min(batch, max_blocks - advanced)
        before = replace(result)
        try:
            with transaction.atomic():
                moved = _index_batch(source=source, chain_id=chain_id, limit=limit, result=result)
        except _ChainMoved:
            result = before  # the batch's transaction was rolled back: so are its counts
            retries += 1
            if retries > MAX_RETRIES:
                raise IndexerError("the chain kept changing while being read") from None
            logger.info("chain %s changed while being read; reading the batch again", chain_id)
            continue
        retries = 0
        if moved is None:
            break
        advanced += moved
    if from_block is not None:
        _refresh_from(chain_id=chain_id, from_block=from_block, result=result)
    return result


# ----------------------------------------------------------------------------------- one batch


def _index_batch(*, source: _Source, chain_id: int, limit: int, result: IndexResult) -> int | None:
    """Index one batch; the number of blocks the cursor moved, or None when there is nothing to
    do (at the head, or another run holds the cursor)."""
    w3 = source.w3
    cursor = _lock_cursor(chain_id)
    if cursor is None:
        result.skipped = "busy"
        return None
    touched: Touched = set()
    head = int(w3.eth.block_number)
    result.head = head

    last = cursor.last_indexed_block
    reorg, fork = _find_fork(w3=w3, chain_id=chain_id)
    if reorg:
        result.reorgs += 1
        result.events_removed += _roll_back(chain_id=chain_id, above=fork, touched=touched)
        logger.warning(
            "chain %s: reorg; indexed blocks above %s rolled back",
            chain_id,
            "the start" if fork is None else fork,
        )
        last = fork
        cursor.last_indexed_block = last

    start_block = settings.CHAIN_INDEXER_START_BLOCK
    first_new = start_block if last is None else last + 1
    end = min(head, first_new + limit - 1)
    if end < first_new:  # at the head
        if reorg:
            cursor.save()
            _refresh(chain_id=chain_id, touched=touched, result=result)
        result.to_block = last
        return None
    start = first_new if last is None else max(start_block, first_new - settings.CHAIN_REORG_MARGIN)
    if result.from_block is None:
        result.from_block = start

    end_hash = _block_hash(w3, end)
    logs = source.logs(start, end)
    if end_hash is None or _block_hash(w3, end) != end_hash:
        raise _ChainMoved
    if last is not None and not reorg:
        stored = IndexedBlock.objects.filter(chain_id=chain_id, number=last).first()
        if stored is not None and _block_hash(w3, last) != stored.hash:
            raise _ChainMoved
    fresh: dict[tuple[str, int], ChainEvent] = {}
    for log in logs:
        event = source.decode(log, chain_id=chain_id)
        if event is None:
            continue
        if event.block_number == end and event.block_hash != end_hash:
            raise _ChainMoved
        fresh[(event.block_hash, event.log_index)] = event
    # Only the portal's own accounts: anyone can have the validator emit PasskeyCreated for any
    # address, or deploy accounts through the factory.
    ours = watched_among(chain_id=chain_id, addresses={e.account for e in fresh.values()})
    fresh = {key: event for key, event in fresh.items() if event.account in ours}

    # Upsert the fresh events; delete stored events of the range that the chain no longer has.
    existing = {
        (block_hash, log_index): (pk, name, account, credential_id)
        for pk, block_hash, log_index, name, account, credential_id in ChainEvent.objects.filter(
            chain_id=chain_id, block_number__gte=start, block_number__lte=end
        ).values_list("pk", "block_hash", "log_index", "name", "account", "credential_id")
    }
    stale = [key for key in existing if key not in fresh]
    if stale:
        for key in stale:
            _, name, account, credential_id = existing[key]
            touched.add((name, account, credential_id))
        for pks in chunks([existing[key][0] for key in stale]):
            ChainEvent.objects.filter(pk__in=pks).delete()
        result.events_removed += len(stale)
        logger.warning("chain %s: %d indexed events no longer on chain", chain_id, len(stale))
    new = [event for key, event in fresh.items() if key not in existing]
    _fill_deployment_times(w3, new)
    for event in new:
        touched.add((event.name, event.account, event.credential_id))
    ChainEvent.objects.bulk_create(new, batch_size=500, ignore_conflicts=True)
    result.events_added += len(new)

    IndexedBlock.objects.update_or_create(
        chain_id=chain_id, number=end, defaults={"hash": end_hash}
    )
    _prune_checkpoints(chain_id)
    moved = end - (last if last is not None else first_new - 1)
    cursor.last_indexed_block = end
    cursor.save()
    result.to_block = end
    result.batches += 1
    _refresh(chain_id=chain_id, touched=touched, result=result)
    return moved


def _lock_cursor(chain_id: int) -> IndexerCursor | None:
    IndexerCursor.objects.get_or_create(chain_id=chain_id)
    return (
        IndexerCursor.objects.select_for_update(skip_locked=True).filter(chain_id=chain_id).first()
    )


def _find_fork(*, w3: Web3, chain_id: int) -> tuple[bool, int | None]:
    """(False, None) when the indexed blocks are still the chain's; else (True, the newest
    checkpoint still on the chain: the fork is above it, or None when no stored checkpoint is)."""
    checkpoints = list(
        IndexedBlock.objects.filter(chain_id=chain_id)
        .order_by("number")
        .values_list("number", "hash")
    )
    if not checkpoints:
        return False, None
    number, hash_ = checkpoints[-1]
    if _block_hash(w3, number) == hash_:
        return False, None
    # Checkpoints still on the chain form a prefix: binary search for its end.
    low, high, best = 0, len(checkpoints) - 2, None
    while low <= high:
        middle = (low + high) // 2
        number, hash_ = checkpoints[middle]
        if _block_hash(w3, number) == hash_:
            best = number
            low = middle + 1
        else:
            high = middle - 1
    return True, best


def _roll_back(*, chain_id: int, above: int | None, touched: Touched) -> int:
    """Delete the events and checkpoints above block `above` (None: all of them)."""
    events = ChainEvent.objects.filter(chain_id=chain_id)
    checkpoints = IndexedBlock.objects.filter(chain_id=chain_id)
    if above is not None:
        events = events.filter(block_number__gt=above)
        checkpoints = checkpoints.filter(number__gt=above)
    touched.update(events.values_list("name", "account", "credential_id"))
    removed, _ = events.delete()
    checkpoints.delete()
    return removed


@transaction.atomic
def _rewind(*, w3: Web3, chain_id: int, from_block: int) -> None:
    """Move the cursor back so that the next batch starts reading at `from_block`."""
    IndexerCursor.objects.get_or_create(chain_id=chain_id)
    cursor = IndexerCursor.objects.select_for_update().get(chain_id=chain_id)
    start_block = settings.CHAIN_INDEXER_START_BLOCK
    IndexedBlock.objects.filter(chain_id=chain_id, number__gte=from_block).delete()
    if from_block <= start_block:
        cursor.last_indexed_block = None
        IndexedBlock.objects.filter(chain_id=chain_id).delete()
    else:
        cursor.last_indexed_block = from_block - 1
        hash_ = _block_hash(w3, from_block - 1)
        if hash_ is not None:
            IndexedBlock.objects.update_or_create(
                chain_id=chain_id, number=from_block - 1, defaults={"hash": hash_}
            )
    cursor.save()


@transaction.atomic
def _refresh_from(*, chain_id: int, from_block: int, result: IndexResult) -> None:
    """After a re-index: recompute the read models of every event read again, so that a re-index
    also repairs read models that went wrong without the events changing."""
    events = ChainEvent.objects.filter(chain_id=chain_id, block_number__gte=from_block)
    if result.to_block is not None:
        events = events.filter(block_number__lte=result.to_block)
    touched: Touched = set(events.values_list("name", "account", "credential_id"))
    _refresh(chain_id=chain_id, touched=touched, result=result)


def _prune_checkpoints(chain_id: int) -> None:
    oldest_kept = (
        IndexedBlock.objects.filter(chain_id=chain_id)
        .order_by("-number")
        .values_list("number", flat=True)[CHECKPOINTS_KEPT - 1 : CHECKPOINTS_KEPT]
    )
    if oldest_kept:
        IndexedBlock.objects.filter(chain_id=chain_id, number__lt=oldest_kept[0]).delete()


def _fill_deployment_times(w3: Web3, events: Sequence[ChainEvent]) -> None:
    """AccountDeployed's block time (an account's deployment time): fetch it when the node's
    logs do not carry it."""
    times: dict[str, datetime] = {}
    for event in events:
        if event.name != "AccountDeployed" or event.block_timestamp is not None:
            continue
        if event.block_hash not in times:
            block = w3.eth.get_block(event.block_hash)  # type: ignore[arg-type]
            times[event.block_hash] = _timestamp(block["timestamp"])
        event.block_timestamp = times[event.block_hash]


# ---------------------------------------------------------------------------------- read models


def _refresh(*, chain_id: int, touched: Touched, result: IndexResult) -> None:
    """Tell the read models what changed; count what each receiver changed."""
    if not touched:
        return
    for _receiver, response in events_indexed.send(
        sender=ChainEvent, chain_id=chain_id, events=touched
    ):
        read_model, changed = cast(tuple[str, int], response)
        result.updated[str(read_model)] = result.updated.get(str(read_model), 0) + int(changed)


# ------------------------------------------------------------------------------------- helpers


def _block_hash(w3: Web3, number: int) -> str | None:
    """The hash of the chain's block `number`; None when the chain is not that long."""
    try:
        block = w3.eth.get_block(number)
    except BlockNotFound:
        return None
    if block is None or block.get("hash") is None:
        return None
    return _hex(block["hash"])


def _hex(value: bytes | str) -> str:
    if isinstance(value, str):
        return "0x" + value.removeprefix("0x").lower()
    return "0x" + bytes(value).hex()


def _unhex(value: str) -> bytes:
    return bytes.fromhex(value.removeprefix("0x"))


def _timestamp(value: int | str) -> datetime:
    seconds = int(value, 16) if isinstance(value, str) else int(value)
    return datetime.fromtimestamp(seconds, tz=UTC)


@lru_cache(maxsize=4096)
def _checksum(address: str) -> str:
    return str(to_checksum_address(address))


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) <= MAX_JSON_INT else str(value)
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return str(value)
