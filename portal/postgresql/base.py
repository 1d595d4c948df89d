"""Django's PostgreSQL backend (psycopg 3), but the check of a kept connection before a request
reuses it (CONN_HEALTH_CHECKS) asks the connection's socket rather than the server.

Django's own check sends `SELECT 1`: one more round trip on every request that touches the
database, as much as a sign-in's read. A connection that sits idle between requests is sent
nothing, unless the server is ending it (a restart, pg_terminate_backend, an idle timeout),
which leaves its socket readable (the error, then the end of the stream). So: usable when
psycopg has not seen it break and nothing is waiting on its socket; anything unexpected there
means a new connection, which is what Django's check would do too.
"""

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            poller = select.poll()
            poller.register(connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):  # no socket any more
            return False
