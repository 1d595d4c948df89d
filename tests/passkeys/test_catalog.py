"""The authenticator catalog: import from a file or URL, weekly refresh, never half-replaced."""

import http.server
import json
import logging
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from passkeys.catalog import import_catalog
from passkeys.models import AuthenticatorProvider
from passkeys.tasks import refresh_authenticator_catalog

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "aaguids.json"
ICLOUD = uuid.UUID("fbfc3007-154e-4ecc-8c0b-6e020557d7bd")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on loopback serving the files in a temporary folder."""
    shutil.copy(FIXTURE, tmp_path / "aaguids.json")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", tmp_path
    server.shutdown()
    server.server_close()


def test_import_from_a_file() -> None:
    call_command("import_aaguids", str(FIXTURE))

    icloud = AuthenticatorProvider.objects.get(aaguid=ICLOUD)
    assert icloud.name == "iCloud Keychain"
    assert icloud.icon_light.startswith("data:image/svg+xml;base64,")
    assert icloud.icon_dark.startswith("data:image/svg+xml;base64,")
    assert AuthenticatorProvider.objects.get(name="YubiKey 5 Series").icon_light == ""
    assert AuthenticatorProvider.objects.count() == 3


def test_import_from_a_url(served: tuple[str, Path]) -> None:
    url, _ = served

    assert import_catalog(source=f"{url}/aaguids.json") == 3
    assert AuthenticatorProvider.objects.filter(aaguid=ICLOUD).exists()


def test_reimport_replaces_renames_and_drops(tmp_path: Path) -> None:
    call_command("import_aaguids", str(FIXTURE))
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps({str(ICLOUD): {"name": "Apple Passwords"}}))

    call_command("import_aaguids", str(smaller))

    assert list(AuthenticatorProvider.objects.values_list("name", flat=True)) == ["Apple Passwords"]


BAD_CATALOGS = [
    "not json",
    "[]",
    "{}",
    json.dumps({"not-a-uuid": {"name": "x"}}),
    json.dumps({str(ICLOUD): "iCloud"}),
    json.dumps({str(ICLOUD): {"name": ""}}),
    json.dumps({str(ICLOUD): {"name": 7}}),
    json.dumps({str(ICLOUD): {"name": "x", "icon_light": "javascript:alert(1)"}}),
    json.dumps({str(ICLOUD): {"name": "x", "icon_dark": "https://tracker.example/p.png"}}),
]


@pytest.mark.parametrize("content", BAD_CATALOGS)
def test_malformed_catalog_is_refused_and_the_old_one_kept(tmp_path: Path, content: str) -> None:
    call_command("import_aaguids", str(FIXTURE))
    bad = tmp_path / "bad.json"
    bad.write_text(content)

    with pytest.raises(CommandError, match="catalog not changed"):
        call_command("import_aaguids", str(bad))

    assert AuthenticatorProvider.objects.count() == 3


def test_missing_file_is_refused() -> None:
    with pytest.raises(CommandError, match="could not read"):
        call_command("import_aaguids", "/nonexistent/aaguids.json")


def test_weekly_refresh_loads_from_the_configured_url(
    settings: Any, served: tuple[str, Path]
) -> None:
    url, _ = served
    settings.PORTAL_AAGUID_URL = f"{url}/aaguids.json"

    assert refresh_authenticator_catalog() == 3
    assert AuthenticatorProvider.objects.count() == 3


def test_refresh_does_nothing_without_a_url(settings: Any) -> None:
    settings.PORTAL_AAGUID_URL = ""

    assert refresh_authenticator_catalog() is None


@pytest.mark.parametrize("path", ["missing.json", "broken.json"])
def test_failed_refresh_keeps_the_catalog_and_logs_why(
    settings: Any, served: tuple[str, Path], caplog: pytest.LogCaptureFixture, path: str
) -> None:
    url, folder = served
    (folder / "broken.json").write_text("{ broken")
    call_command("import_aaguids", str(FIXTURE))
    settings.PORTAL_AAGUID_URL = f"{url}/{path}"

    with caplog.at_level(logging.WARNING, logger="passkeys.catalog"):
        assert refresh_authenticator_catalog() is None

    assert AuthenticatorProvider.objects.count() == 3
    assert "keeping the previous one" in caplog.text


def test_refresh_is_scheduled_weekly(settings: Any) -> None:
    from datetime import timedelta

    entry = settings.CELERY_BEAT_SCHEDULE["refresh-authenticator-catalog"]
    assert entry["task"] == "passkeys.tasks.refresh_authenticator_catalog"
    assert entry["schedule"] == timedelta(days=7)
