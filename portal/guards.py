"""Guards on sensitive actions: a tiny dependency-inversion hook.

Identity services (passkeys, accounts, later sessions, guardians, recovery, the sponsor) call
`check_sensitive_action(action=...)` first thing; feature apps that can refuse such actions (the
domain watch's lockdown) register a guard in their AppConfig.ready(). So the services never import
the feature apps, and a refusal is a PortalError the API already renders ({code, detail}).
Services that act for a person call it through accounts.services.guard_sensitive_action, which
also writes the refusal to the person's audit log.

Action names (stable; the lockdown refuses all of them):
  passkey.add            adding a passkey to an existing account (options and verify)
  passkey.remove         deleting a passkey
  account.email_change   changing the email address security notices go to
  session.create         creating a session key for a dapp (sessionkeys.services.request_session)
  guardian.change        adding or removing a recovery guardian (not built yet)
  recovery.discard       discarding a pending recovery (not built yet)
  sponsor.ownership_call the paymaster sponsoring an ownership-changing call: validation keys,
                         modules, guardians, recovery (chain.pipeline.create, chain.ownership)
"""

from typing import Protocol

SENSITIVE_ACTIONS = (
    "passkey.add",
    "passkey.remove",
    "account.email_change",
    "session.create",
    "guardian.change",
    "recovery.discard",
    "sponsor.ownership_call",
)


class Guard(Protocol):
    def check(self, *, action: str) -> None:
        """Raise a PortalError (e.g. 423 `lockdown`) to refuse `action`; return to allow it."""

    def banner(self) -> str | None:
        """A sentence every page shows while the guard is up, or None."""


_guards: dict[str, Guard] = {}


def register_guard(name: str, guard: Guard) -> None:
    """Register (or replace) a guard under a stable name; idempotent across ready() calls."""
    _guards[name] = guard


def check_sensitive_action(*, action: str) -> None:
    if action not in SENSITIVE_ACTIONS:
        raise ValueError(f"unknown sensitive action {action!r}")
    for guard in list(_guards.values()):
        guard.check(action=action)


def active_banners() -> list[str]:
    return [text for guard in list(_guards.values()) if (text := guard.banner())]
