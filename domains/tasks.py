"""Celery tasks of the domain watch: thin wrappers over services and delivery."""

import hashlib
import hmac
import json
import logging
from typing import Any

import requests
from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail

from accounts.models import User

logger = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def watch_domains() -> None:
    from domains.services import run_watch

    run_watch()


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_operators(*, subject: str, message: str) -> None:
    send_mail(subject, message, settings.DEFAULT_FROM_EMAIL, list(settings.DOMAINS_ALERT_EMAILS))


class WebhookRefused(Exception):
    pass


@shared_task(
    autoretry_for=(requests.RequestException, WebhookRefused),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=False,
    max_retries=settings.DOMAINS_WEBHOOK_RETRIES,
)
def post_webhook(*, payload: dict[str, Any]) -> None:
    """POST the JSON payload; anything but 2xx is retried with backoff. With
    DOMAINS_WEBHOOK_SECRET, `X-Portal-Signature: sha256=<hex HMAC of the body>`."""
    body = json.dumps(payload, sort_keys=True).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "passkey-portal-domain-watch"}
    if settings.DOMAINS_WEBHOOK_SECRET:
        mac = hmac.new(settings.DOMAINS_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Portal-Signature"] = f"sha256={mac}"
    response = requests.post(settings.DOMAINS_WEBHOOK_URL, data=body, headers=headers, timeout=10)
    if not 200 <= response.status_code < 300:
        raise WebhookRefused(f"webhook answered HTTP {response.status_code}")


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def announce_lockdown(*, reason: str) -> None:
    """One email to every signed-up person with an address: the lockdown is on."""
    for address in (
        User.objects.filter(is_active=True).exclude(email="").values_list("email", flat=True)
    ):
        send_mail(
            "Passkey Portal is locked down for your safety",
            "The operators of Passkey Portal have paused changes to accounts while they check "
            "the portal's domain. Until they lift it, adding or removing passkeys and changing "
            "your email are refused. Do not approve anything a page asks you to sign unless you "
            "started it yourself on the portal.",
            settings.DEFAULT_FROM_EMAIL,
            [address],
        )
