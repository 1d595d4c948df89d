"""Production refuses unsafe defaults; `check --deploy` is clean with a real secret key."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PORTAL_"))
    }
    environment.update(env)
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_debug_off_refuses_the_default_secret_key() -> None:
    result = manage("check", DJANGO_DEBUG="false")

    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_check_deploy_is_clean_in_production() -> None:
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-long-random-production-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
        DJANGO_ALLOWED_HOSTS="portal.example",
        PORTAL_RP_ID="portal.example",
        PORTAL_ORIGINS="https://portal.example",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "a-long-random-production-secret-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "testserver",
}
# A request that claims, in X-Forwarded-Proto, to have arrived over HTTPS.
CLAIMS_HTTPS = (
    "from django.test import Client; "
    "r = Client().get('/login', headers={'X-Forwarded-Proto': 'https'}); "
    "print('STATUS', r.status_code)"
)


def test_without_a_proxy_x_forwarded_proto_is_not_trusted() -> None:
    result = manage("shell", "-c", CLAIMS_HTTPS, **PRODUCTION, PORTAL_NUM_PROXIES="0")

    assert "STATUS 301" in result.stdout, result.stdout + result.stderr  # redirected to HTTPS


def test_behind_a_configured_proxy_x_forwarded_proto_is_trusted() -> None:
    result = manage("shell", "-c", CLAIMS_HTTPS, **PRODUCTION, PORTAL_NUM_PROXIES="1")

    assert "STATUS 200" in result.stdout, result.stdout + result.stderr


DATABASE_OPTIONS = (
    "from django.conf import settings; "
    "database = settings.DATABASES['default']; "
    "print(database['ENGINE'], database['OPTIONS'].get('prepare_threshold'))"
)


def test_postgresql_prepares_repeated_statements_unless_told_not_to() -> None:
    url = "postgres://portal@db.example:5432/portal"

    default = manage("shell", "-c", DATABASE_OPTIONS, DATABASE_URL=url)
    behind_an_old_pooler = manage(
        "shell", "-c", DATABASE_OPTIONS, DATABASE_URL=url, DATABASE_PREPARED_STATEMENTS="false"
    )

    assert default.stdout.splitlines()[-1].split() == ["portal.postgresql", "5"], default.stderr
    assert behind_an_old_pooler.stdout.splitlines()[-1].split() == ["portal.postgresql", "None"]
