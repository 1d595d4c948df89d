"""The portal's Redis cache: Django's, with one Redis client per process and a counter for the
rate limit that costs one round trip.

Django's backend builds a new client object for every call (its constructor fills a table of
some two hundred reply callbacks) and its `incr` asks whether the key exists first: a rate-limit
check cost two clients and two or three round trips per request.
"""

from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient as DjangoRedisCacheClient

# KEYS[1]: the counter; ARGV[1]: its lifetime in seconds, set by its first count.
_COUNT = """
local value = redis.call('INCR', KEYS[1])
if value == 1 then
    redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return value
"""


class RedisCacheClient(DjangoRedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._scripts: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        # One client per connection pool, as the pools are: a client is only a pool and its
        # reply callbacks, safe to share between threads (and a forked process opens new
        # connections: the pool checks its pid).
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(  # type: ignore[attr-defined]
                connection_pool=pool
            )
        return client

    def count(self, key: str, timeout: int) -> int:
        """Add one to a counter that lives `timeout` seconds from its first count; its new
        value. One command (a script: atomic, and never a counter without an expiry)."""
        client = self.get_client(key, write=True)
        script = self._scripts.get(id(client))
        if script is None:
            script = self._scripts[id(client)] = client.register_script(_COUNT)
        return int(script(keys=[key], args=[timeout]))


class RedisCache(DjangoRedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = RedisCacheClient

    def count(self, key: str, *, timeout: int) -> int:
        """See RedisCacheClient.count; `key` is made as for any other cache call."""
        client: RedisCacheClient = self._cache  # type: ignore[attr-defined]
        return client.count(self.make_and_validate_key(key), timeout)
