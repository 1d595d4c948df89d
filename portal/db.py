"""One database transaction per request that writes."""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from portal.errors import PortalError

F = TypeVar("F", bound=Callable[..., Any])


def one_transaction(view: F) -> F:
    """Run a view method in one transaction (one commit instead of one per statement).

    A refusal (PortalError) commits what was written before it, as each statement's own commit
    did before: a used-up ceremony and the audit event of a refused sign-in must stay. Any
    other error rolls everything back.
    """

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        refusal: PortalError | None = None
        with transaction.atomic():
            try:
                return view(*args, **kwargs)
            except PortalError as exc:
                refusal = exc
        raise refusal

    return wrapper  # type: ignore[return-value]


def default_database() -> Any:
    """The default database's connection wrapper itself. django.db.connection is a proxy that
    looks the wrapper up (a thread-local) on every attribute: hand-written queries on the
    sign-in path, which hand it to each field's conversions, take the wrapper once instead."""
    return connections[DEFAULT_DB_ALIAS]
