"""Queries of the chain app."""

from __future__ import annotations

from django.conf import settings

from chain.models import Deployment


def deployment_addresses(*, chain_id: int | None = None) -> dict[str, str]:
    """Contract name → address recorded for the chain (the configured CHAIN_ID by default)."""
    rows = Deployment.objects.filter(chain_id=settings.CHAIN_ID if chain_id is None else chain_id)
    return {row.name: row.address for row in rows}


def deployment_address(name: str, *, chain_id: int | None = None) -> str:
    """The recorded address of contract `name`; Deployment.DoesNotExist when not deployed."""
    row = Deployment.objects.get(
        chain_id=settings.CHAIN_ID if chain_id is None else chain_id, name=name
    )
    return row.address
