"""What the chain app tells the apps above it. `chain` imports no feature app: they listen here."""

from django.dispatch import Signal

# After status changes commit, with `operations=`: the ChainOperations moved together (one, or
# the operations of a bundle), each as it is now. Receivers handle them as one batch.
operation_changed = Signal()

# Inside the indexer's batch transaction, after stored events changed (added, or removed by a
# reorg), with `chain_id=` and `events=`: a set of (event name, account address, credential id
# hex or ""). Receivers recompute their read models from chain.selectors and return
# (read model name, rows changed).
events_indexed = Signal()

# After `deploycontracts`/`devchain` recorded the contracts of a chain, with `chain_id=`.
contracts_deployed = Signal()
