"""Dapps a person connected (eth_requestAccounts through the /connect popup): connect,
disconnect, the check every other request of a dapp passes (`require_connection`), and what the
person sees of each connection (the session keys, messages and calls it was allowed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import AuditEvent, SmartAccount, User
from accounts.selectors import smart_account_of
from accounts.services import record_event
from passkeys.models import SignatureRequest
from portal.client_info import ClientInfo
from portal.errors import Conflict, NotFound, PortalError
from portal.validators import check_dapp_origin
from sessionkeys.models import CallBundle, DappConnection, Session


def _account(user: User) -> SmartAccount:
    account = smart_account_of(user=user)
    if account is None:
        raise Conflict("account_not_found", "You have no smart account on this chain yet.")
    return account


@dataclass(frozen=True)
class Connected:
    connection: DappConnection
    first_time: bool


def connect(*, user: User, origin: str, client: ClientInfo | None) -> Connected:
    """Connect `origin` (or connect it again); audit-logged each time it was not connected."""
    check_dapp_origin(origin)
    account = _account(user)
    now = timezone.now()
    with transaction.atomic():
        connection = (
            DappConnection.objects.select_for_update().filter(user=user, origin=origin).first()
        )
        first_time = connection is None
        if connection is None:
            try:
                with transaction.atomic():
                    connection = DappConnection.objects.create(
                        user=user, account=account, origin=origin, connected_at=now, created_at=now
                    )
            except IntegrityError:  # connected at the same moment by another request
                connection = DappConnection.objects.select_for_update().get(
                    user=user, origin=origin
                )
                return Connected(connection=connection, first_time=False)
        elif connection.disconnected_at is None and connection.account_id == account.pk:
            return Connected(connection=connection, first_time=False)
        else:
            connection.account = account
            connection.connected_at = now
            connection.disconnected_at = None
            connection.save(update_fields=["account", "connected_at", "disconnected_at"])
        record_event(
            kind=AuditEvent.Kind.DAPP_CONNECTED,
            user=user,
            client=client,
            origin=origin,
            account=account.address,
            connection_id=connection.pk,
            first_time=first_time,
        )
    return Connected(connection=connection, first_time=first_time)


def _disconnect(connection: DappConnection, *, user: User, client: ClientInfo | None) -> None:
    with transaction.atomic():
        updated = DappConnection.objects.filter(
            pk=connection.pk, disconnected_at__isnull=True
        ).update(disconnected_at=timezone.now())
        if updated:
            record_event(
                kind=AuditEvent.Kind.DAPP_DISCONNECTED,
                user=user,
                client=client,
                origin=connection.origin,
                connection_id=connection.pk,
            )


def disconnect_origin(*, user: User, origin: str, client: ClientInfo | None) -> None:
    """wallet_disconnect: idempotent (nothing to do when not connected)."""
    check_dapp_origin(origin)
    connection = DappConnection.objects.filter(user=user, origin=origin).first()
    if connection is not None:
        _disconnect(connection, user=user, client=client)


def disconnect(*, user: User, connection_id: int, client: ClientInfo | None) -> DappConnection:
    """The person disconnects one of their dapps (404 for anyone else's)."""
    connection = connection_of(user=user, connection_id=connection_id)
    _disconnect(connection, user=user, client=client)
    connection.refresh_from_db()
    return connection


def require_connection(*, user: User, origin: str) -> DappConnection:
    """The active connection of `origin`, used now; 403 `not_connected` without one."""
    check_dapp_origin(origin)
    connection = DappConnection.objects.filter(
        user=user, origin=origin, disconnected_at__isnull=True
    ).first()
    if connection is None:
        raise PortalError(
            "not_connected", f"{origin} is not connected to your account.", status=403
        )
    DappConnection.objects.filter(pk=connection.pk).update(last_used_at=timezone.now())
    return connection


def check_message_origin(*, user: User, origin: str) -> None:
    """passkeys.messages' origin check: a message is signed only for a connected dapp."""
    require_connection(user=user, origin=origin)


# --- reads --------------------------------------------------------------------------------------


def connections_of(*, user: User, active: bool = True) -> QuerySet[DappConnection]:
    connections = DappConnection.objects.filter(
        user=user, account__chain_id=settings.CHAIN_ID
    ).select_related("account")
    return connections.filter(disconnected_at__isnull=True) if active else connections


def connection_of(*, user: User, connection_id: int) -> DappConnection:
    connection = DappConnection.objects.filter(user=user, pk=connection_id).first()
    if connection is None:
        raise NotFound("connection_not_found", "No such connected app.")
    return connection


def allowed(connection: DappConnection) -> dict[str, Any]:
    """What the dapp was allowed: its session keys (with their status), how many messages the
    person signed for it and how many call bundles it asked for."""
    sessions = Session.objects.filter(
        account__user_id=connection.user_id, origin=connection.origin
    ).order_by("-created_at")
    return {
        "sessions": [
            {
                "id": session.pk,
                "label": session.label,
                "status": session.status,
                "expires_at": session.expires_at,
            }
            for session in sessions[:50]
        ],
        "signed_messages": SignatureRequest.objects.filter(
            account__user_id=connection.user_id,
            origin=connection.origin,
            signed_at__isnull=False,
        ).count(),
        "call_bundles": CallBundle.objects.filter(connection=connection).count(),
    }


def origin_seen(*, user: User, origin: str) -> bool:
    """Whether the person ever approved something for `origin` (a session key, a signed message,
    calls that were signed): a first request from a connected but new dapp is flagged."""
    if Session.objects.filter(
        account__user=user,
        origin=origin,
        status__in=(Session.Status.ACTIVE, Session.Status.EXPIRED, Session.Status.REVOKED),
    ).exists():
        return True
    if SignatureRequest.objects.filter(
        account__user=user, origin=origin, signed_at__isnull=False
    ).exists():
        return True
    return CallBundle.objects.filter(
        connection__user=user, origin=origin, operation__signed_at__isnull=False
    ).exists()
