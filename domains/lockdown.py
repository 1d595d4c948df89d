"""The lockdown as a portal guard (portal.guards): while it is on, every sensitive action is
refused with 423 `lockdown`, and every page shows a banner."""

from django.db import DatabaseError

from domains.selectors import lockdown_enabled, lockdown_state
from portal.errors import PortalError


class LockdownGuard:
    def check(self, *, action: str) -> None:
        if lockdown_enabled():
            raise PortalError(
                "lockdown",
                "The portal is locked down while its operators check the domain: this action is "
                "paused. Try again later.",
                status=423,
                action=action,
            )

    def banner(self) -> str | None:
        try:
            state = lockdown_state()
        except DatabaseError:  # before migrations
            return None
        if not state.enabled:
            return None
        return (
            "The portal is locked down while its operators check its domain. Adding or removing "
            "passkeys and changing your email are paused. Do not approve anything a page asks "
            "you to sign unless you started it here."
        )
