"""The portal's own accounts, as the chain app knows them (WatchedAccount): the indexer stores
events about these only. The app that opens accounts registers each one."""

from eth_utils import to_checksum_address

from chain.models import WatchedAccount


def watch_account(*, chain_id: int, address: str) -> None:
    """Make `address` one of the portal's accounts on `chain_id`. Idempotent."""
    WatchedAccount.objects.get_or_create(chain_id=chain_id, address=to_checksum_address(address))
