"""The one error type that services raise for a refusal a client should see."""

from typing import Any


class PortalError(Exception):
    """A refusal with a stable machine-readable code, a human detail and an HTTP status."""

    status_code = 400

    def __init__(self, code: str, detail: str, *, status: int | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra
        if status is not None:
            self.status_code = status


class NotFound(PortalError):
    status_code = 404


class Conflict(PortalError):
    status_code = 409
