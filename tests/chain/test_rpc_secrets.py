"""A hosted RPC provider's API key (in the RPC URL) reaches neither people nor the logs."""

import logging
import sys
from typing import Any

import pytest
from rest_framework.test import APIClient

from chain import tasks
from chain.client import ChainUnavailable
from chain.devtools import devnet
from chain.pipeline.submit import submit
from portal.redaction import RedactUrlsFilter, redact_urls
from tests.chain.conftest import PipelineKit

SECRET = "fake-provider-key-7c1d"


def test_an_unreachable_provider_is_shown_without_its_key(
    pipeline_kit: PipelineKit, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user = pipeline_kit.user("quinn")
    _account, operation = pipeline_kit.deployment(user, pipeline_kit.passkey(user))
    settings.CHAIN_RPC_URL = f"http://me:pass-{SECRET}@127.0.0.1:{devnet.free_port()}/v3/{SECRET}"
    with pytest.raises(ChainUnavailable) as unavailable:
        submit(operation_id=operation.pk)
    assert SECRET not in str(unavailable.value)
    assert SECRET not in unavailable.value.detail
    assert "127.0.0.1" in unavailable.value.detail  # the log still says which node failed

    with caplog.at_level(logging.WARNING):
        tasks._chain_unavailable(operation.pk, unavailable.value)
    assert "chain unavailable" in caplog.text and SECRET not in caplog.text

    client = APIClient()
    client.force_authenticate(user)
    shown = client.get(f"/api/v1/operations/{operation.pk}")
    assert shown.status_code == 200
    assert shown.json()["error"] == ChainUnavailable.PUBLIC_MESSAGE
    assert SECRET not in shown.content.decode()
    listed = client.get("/api/v1/operations")
    assert SECRET not in listed.content.decode()


def test_log_lines_and_tracebacks_have_their_urls_cut() -> None:
    console = next(h for h in logging.getLogger().handlers if h.filters)
    assert any(isinstance(f, RedactUrlsFilter) for f in console.filters)

    url = f"https://user:pw@eth.example/v2/{SECRET}?token={SECRET}"
    record = logging.LogRecord("web3", logging.WARNING, __file__, 1, "calling %s", (url,), None)
    try:
        raise ConnectionError(f"Max retries exceeded with url: /v2/{SECRET} ({url})")
    except ConnectionError:
        record.exc_info = sys.exc_info()
    assert RedactUrlsFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert SECRET not in formatted and "pw" not in formatted
    assert "https://eth.example/…" in formatted


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
        (f"https://eth.example/v2/{SECRET}", "https://eth.example/…"),
        (f"wss://u:{SECRET}@node.example:8546/ws", "wss://node.example:8546/…"),
        (f"host='x', port=1): Max retries exceeded with url: /v3/{SECRET} (Caused", None),
    ],
)
def test_redact_urls(text: str, shown: str | None) -> None:
    redacted = redact_urls(text)
    assert SECRET not in redacted
    if shown is not None:
        assert redacted == shown
