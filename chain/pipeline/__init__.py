"""The operation pipeline: a change on chain from creation to `confirmed` (or `failed`/`expired`).

A user operation is built (`create`: an EntryPoint v0.8 user operation, sponsored by the portal's
paymaster) and waits in `awaiting_signature` until the app that asked for it attaches the
validator's signature (`create.attach_signature`; for passkeys, passkeys.approvals verifies the
assertion over the operation's hash first). A relayer call (an account deployment) needs no
signature. Either way the operation ends `signed`, with the call the relayer makes (`tx_to`,
`tx_data`), and Celery takes it from there:

- submit (`submit`): simulate (a revert fails the operation, no nonce burned); then, in one
  transaction, take the relayer's next nonce under its row lock, sign the transaction, store the
  raw bytes and the hash and move to `submitted`; only then send. A crash after the commit loses
  nothing: the stored bytes are sent again, never a second transaction.
- track (`track`): a receipt → `included` (or `failed` with the user operation's revert reason)
  → `confirmed` at CHAIN_CONFIRMATIONS deep with the block still on the chain (else back to
  `submitted`); a transaction the node does not know is sent again unchanged; one pending longer
  than CHAIN_REPLACE_AFTER_SECONDS is replaced with higher fees at the same nonce.

Signed user operations and account deployments go in bundles (`bundles`: up to
CHAIN_BUNDLE_MAX_OPS per handleOps or RelayerBatch transaction, a bad one dropped by simulation);
with CHAIN_BUNDLER_URL set, user operations go to that ERC-4337 bundler instead (`bundler`), with
the same states and guarantees.

The database is the durable queue: a task is only a nudge, and the beat tick (`tick`) re-dispatches
what nobody picked up. Every status change goes through chain.transitions.transition.
"""
