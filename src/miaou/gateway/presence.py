"""Who is connected anywhere: a user is online from their first session to their last, on
whichever processes and nodes those sessions live.

:class:`LocalPresence` counts in this process (one node alone). :class:`RedisPresence`
counts per process instance in a Redis hash per user; each instance keeps a liveness key
alive (``TTL_S``) while it runs, and counts of instances whose key expired (a crashed node)
are ignored, so a crash cannot leave its users online for ever.

Each book also keeps how a user is shown while online (``online``, ``idle``, ``dnd``, or
``offline`` for invisible), the last status any of their sessions set, so that READY can
list who is online in each guild: without it a client would show everyone offline until
they next changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Collection
from typing import Protocol

import structlog
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from miaou.errors import Unavailable

PRESENCE_CONNECTIONS = 16
# A user's hash holds a count of sessions per instance, and the status under STATUS (its
# "~" sets it apart from instance ids, which are hex).
STATUS = "~status"
# The sum of a user hash's counts over instances still alive; ARGV[n] is the prefix of
# the liveness keys. (They are not declared in KEYS: fine on one Redis, not on Redis
# Cluster.)
_LIVE_TOTAL = """
local function live_total(key, prefix)
  local counts = redis.call('HGETALL', key)
  local total = 0
  for i = 1, #counts, 2 do
    if string.sub(counts[i], 1, 1) ~= '~' then
      local n = tonumber(counts[i + 1])
      if n > 0 and redis.call('EXISTS', prefix .. counts[i]) == 1 then total = total + n end
    end
  end
  return total
end
"""
# KEYS[1]: the user's hash; ARGV: this instance, the change, the liveness prefix. Returns
# the user's live total; the status goes with their last session.
CHANGE_SCRIPT = (
    _LIVE_TOTAL
    + """
local mine = redis.call('HINCRBY', KEYS[1], ARGV[1], ARGV[2])
if mine <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
local total = live_total(KEYS[1], ARGV[3])
if total == 0 then redis.call('DEL', KEYS[1]) end
return total
"""
)
# KEYS[1]: the user's hash; ARGV: this instance, the status. Set only while this instance
# counts a session of the user (a status set late, after their last session, is dropped).
SET_STATUS_SCRIPT = f"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], '{STATUS}', ARGV[2])
end
"""
# KEYS: users' hashes; ARGV[1]: the liveness prefix. For each user, their status if they
# are online (live total > 0), else "".
STATUSES_SCRIPT = (
    _LIVE_TOTAL
    + f"""
local found = {{}}
for i, key in ipairs(KEYS) do
  local status = redis.call('HGET', key, '{STATUS}')
  if status and live_total(key, ARGV[1]) > 0 then found[i] = status else found[i] = '' end
end
return found
"""
)
STATUS_BATCH = 500  # users per STATUSES_SCRIPT call
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

    async def set_status(self, user_id: int, shown: str) -> None:
        """How the user is shown while online (after :meth:`arrive` of one of their
        sessions here); ``offline`` for invisible."""
        ...

    async def statuses(self, user_ids: Collection[int]) -> dict[int, str]:
        """The shown status of each of ``user_ids`` who is online and not shown offline."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class LocalPresence:
    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.shown: dict[int, str] = {}

    async def arrive(self, user_id: int) -> bool:
        self.counts[user_id] = self.counts.get(user_id, 0) + 1
        return self.counts[user_id] == 1

    async def leave(self, user_id: int) -> bool:
        left = self.counts.get(user_id, 0) - 1
        if left > 0:
            self.counts[user_id] = left
            return False
        self.counts.pop(user_id, None)
        self.shown.pop(user_id, None)
        return True

    async def set_status(self, user_id: int, shown: str) -> None:
        if user_id in self.counts:
            self.shown[user_id] = shown

    async def statuses(self, user_ids: Collection[int]) -> dict[int, str]:
        shown = self.shown
        return {u: s for u in user_ids if (s := shown.get(u, "offline")) != "offline"}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.counts.clear()
        self.shown.clear()


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
        self._set_status_script = self.redis.register_script(SET_STATUS_SCRIPT)
        self._statuses_script = self.redis.register_script(STATUSES_SCRIPT)

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

    async def set_status(self, user_id: int, shown: str) -> None:
        try:
            await self._set_status_script(
                keys=[self._user_key(user_id)], args=[self.instance, shown]
            )
        except (RedisError, OSError) as exc:
            raise Unavailable("Presence is unavailable.") from exc

    async def statuses(self, user_ids: Collection[int]) -> dict[int, str]:
        users = list(user_ids)
        found: dict[int, str] = {}
        try:
            for start in range(0, len(users), STATUS_BATCH):
                batch = users[start : start + STATUS_BATCH]
                shown = await self._statuses_script(
                    keys=[self._user_key(u) for u in batch], args=[self._alive_key("")]
                )
                for user_id, status in zip(batch, shown, strict=True):
                    text = status.decode() if isinstance(status, bytes) else str(status)
                    if text and text != "offline":
                        found[user_id] = text
        except (RedisError, OSError) as exc:
            raise Unavailable("Presence is unavailable.") from exc
        return found

    async def close(self) -> None:
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._alive_key(self.instance))
        await self.redis.aclose()
