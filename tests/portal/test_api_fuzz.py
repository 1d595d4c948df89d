"""API fuzz: schemathesis over /api/schema/, every operation, signed in with a token, a fixed seed
and bounded examples. No answer is a server error, and no answer breaks the schema.

The schema is read once, at collection, from the portal's WSGI application in this process; each
operation is then one test (schemathesis's lazy fixture loading does not run on this pytest).
"""

from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

pytestmark = pytest.mark.django_db

EXAMPLES = 40

_portal = get_wsgi_application()


def portal(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The portal's WSGI application on the test's database connection, which (as Django's test
    client does) a request must not close."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = _portal(environ, start_response)
        try:
            return list(response)
        finally:
            response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_wsgi("/api/schema/", portal)


@pytest.fixture(autouse=True)
def _past_the_rate_limit(settings: Any) -> None:
    settings.PORTAL_AUTH_RATE = "100000/min"


@pytest.fixture
def token(sign_up: Any) -> str:
    return str(sign_up("fuzzer")["token"])


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,  # a fixed seed: the same examples every run
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_error_and_no_schema_breaking_answer(case: Any, token: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {token}"},
        checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
    )
