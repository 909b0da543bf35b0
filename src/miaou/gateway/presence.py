"""Who is connected anywhere: a user is online from their first session to their last, on
whichever processes and nodes those sessions live.

:class:`LocalPresence` counts in this process (one node alone). :class:`RedisPresence`
counts per process instance in a Redis hash per user; each instance keeps a liveness key
alive (``TTL_S``) while it runs, and counts of instances whose key expired (a crashed node)
are ignored, so a crash cannot leave its users online for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from miaou.errors import Unavailable

PRESENCE_CONNECTIONS = 16
# KEYS[1]: the user's hash of counts per instance; ARGV: this instance, the change, the
# prefix of instances' liveness keys. Returns the sum over instances still alive. (The
# liveness keys are not declared in KEYS: fine on one Redis, not on Redis Cluster.)
CHANGE_SCRIPT = """
local mine = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if mine <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local counts = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #counts, 2 do
  local n = tonumber(counts[i + 1])
  if n > 0 and redis.call('EXISTS', ARGV[3] .. counts[i]) == 1 then total = total + n end
end
return total
"""
POOL_WAIT_S = 30.0

log = structlog.get_logger("miaou.presence")

TTL_S = 60
REFRESH_S = 20


class Presence(Protocol):
    async def arrive(self, user_id: int) -> bool:
        """Count a session of ``user_id``; True if it is their only one anywhere."""
        ...

    async def leave(self, user_id: int) -> bool:
        """Uncount a session; True if they now have none anywhere."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalPresence:
    def __init__(self) -> None:
        self.counts: dict[int, int] = {}

    async def arrive(self, user_id: int) -> bool:
        self.counts[user_id] = self.counts.get(user_id, 0) + 1
        return self.counts[user_id] == 1

    async def leave(self, user_id: int) -> bool:
        left = self.counts.get(user_id, 0) - 1
        if left > 0:
            self.counts[user_id] = left
            return False
        self.counts.pop(user_id, None)
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.counts.clear()


class RedisPresence:
    def __init__(self, url: str, namespace: str) -> None:
        # redis-py fails a command at once when its pool (100 by default) is busy; when
        # thousands of sessions end together (a restart, a network cut) their presence
        # changes must queue for a connection instead.
        pool = BlockingConnectionPool.from_url(
            url, max_connections=PRESENCE_CONNECTIONS, timeout=POOL_WAIT_S,
            socket_timeout=5, socket_connect_timeout=5,
        )  # fmt: skip
        self.redis = Redis.from_pool(pool)  # owns the pool: closed with the client
        self.namespace = namespace
        self.instance = secrets.token_hex(8)
        self._keeper: asyncio.Task[None] | None = None
        self._change_script = self.redis.register_script(CHANGE_SCRIPT)

    def _user_key(self, user_id: int) -> str:
        return f"{self.namespace}:presence:{user_id}"

    def _alive_key(self, instance: str) -> str:
        return f"{self.namespace}:presence-alive:{instance}"

    async def start(self) -> None:
        try:
            await self.redis.set(self._alive_key(self.instance), 1, ex=TTL_S)
        except (RedisError, OSError) as exc:
            raise Unavailable("Presence is unavailable: Redis does not answer.") from exc
        self._keeper = asyncio.get_running_loop().create_task(self._keep_alive())

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self.redis.set(self._alive_key(self.instance), 1, ex=TTL_S)
            except (RedisError, OSError):
                log.warning("presence_refresh_failed")

    async def _change(self, user_id: int, delta: int) -> int:
        """Add ``delta`` to this instance's count for the user; the user's live total.
        One round trip (a script: this runs for every session start and end)."""
        try:
            total = await self._change_script(
                keys=[self._user_key(user_id)],
                args=[self.instance, delta, self._alive_key("")],
            )
        except (RedisError, OSError) as exc:
            raise Unavailable("Presence is unavailable.") from exc
        return int(total)

    async def arrive(self, user_id: int) -> bool:
        return await self._change(user_id, 1) == 1

    async def leave(self, user_id: int) -> bool:
        return await self._change(user_id, -1) == 0

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._alive_key(self.instance))
        await self.redis.aclose()
