"""A kept PostgreSQL connection that the server ended is replaced before a request uses it
(portal.postgresql: the health check asks the socket, not the server)."""

import time

import psycopg
import pytest
from django.db import close_old_connections, connection

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgresql]


def end_from_the_server(pid: int) -> None:
    params = connection.get_connection_params()
    fields = {name: params[name] for name in ("dbname", "user", "host", "port") if name in params}
    with psycopg.connect(**fields, password=params.get("password"), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])


def test_a_connection_the_server_ended_is_replaced_at_the_next_request() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    assert connection.is_usable()

    end_from_the_server(pid)
    deadline = time.monotonic() + 5
    while connection.is_usable() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not connection.is_usable()

    close_old_connections()  # what Django does when a request starts
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (new_pid,) = cursor.fetchone()

    assert new_pid != pid
