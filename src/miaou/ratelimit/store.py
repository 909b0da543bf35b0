"""Where buckets live: one TAT (a float) per key.

Both backends only fetch and store the TAT; the arithmetic is :func:`~.gcra.decide`'s alone.
A refused hit never writes, so refusals are cheap and cannot extend a client's penalty.
"""

from __future__ import annotations

import asyncio
import math
import random
from typing import Protocol, runtime_checkable

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from miaou.errors import Unavailable

from .gcra import Decision, Limit, decide

__all__ = ["MemoryStore", "RateLimitStore", "RedisStore"]


@runtime_checkable
class RateLimitStore(Protocol):
    async def hit(self, key: str, limit: Limit, now: float, cost: int = 1) -> Decision:
        """Apply one request of weight ``cost`` at ``now`` to bucket ``key``, atomically."""
        ...

    async def close(self) -> None:
        """Release resources; the store must not be used afterwards."""
        ...


class MemoryStore:
    """Buckets in a dict, for a single process (one node, tests).

    Atomic without locks: ``hit`` never awaits between reading and writing a TAT.

    Bounded to ``max_keys`` buckets, because keys come from clients (IPs, user ids) and an
    unbounded dict is a memory leak an attacker can drive. The dict is kept in order of last
    write. When a new key must be stored and the dict is full, it

    1. drops every expired bucket (``tat <= now``: already full again, so forgetting it
       changes no decision), then
    2. if still above the low-water mark (7/8 of ``max_keys``), drops the least recently
       written buckets down to it. Forgetting a live bucket hands that key a fresh burst,
       which is the price of the bound; it only happens with more live keys than fit.

    Freeing down to a low-water mark rather than one slot keeps the O(n) sweep rare:
    amortised O(1) per insert even under a flood of new keys.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys!r}")
        self.max_keys = max_keys
        self._low_water = max_keys - max(1, max_keys // 8)
        self._tats: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._tats)

    async def hit(self, key: str, limit: Limit, now: float, cost: int = 1) -> Decision:
        return self.hit_now(key, limit, now, cost)

    def hit_now(self, key: str, limit: Limit, now: float, cost: int = 1) -> Decision:
        """:meth:`hit` without a coroutine: for callers that cannot await (the segment
        fast path answers inside uvicorn's protocol callbacks)."""
        tat = self._tats.get(key)
        decision = decide(tat, now, limit, cost)
        if decision.allowed:
            if tat is None:
                if len(self._tats) >= self.max_keys:
                    self._make_room(now)
            else:
                # Re-insert so dict order stays "least recently written first".
                del self._tats[key]
            self._tats[key] = decision.tat
        return decision

    def _make_room(self, now: float) -> None:
        expired = [k for k, tat in self._tats.items() if tat <= now]
        for k in expired:
            del self._tats[k]
        excess = len(self._tats) - self._low_water
        if excess > 0:
            # Oldest writes first; materialise the keys since we delete while choosing.
            for k in list(self._tats)[:excess]:
                del self._tats[k]

    async def close(self) -> None:
        self._tats.clear()


class RedisStore:
    """Buckets in Redis, shared by every node using the same server.

    Each hit is an optimistic compare-and-set: ``WATCH key``, ``GET`` the TAT, decide in
    Python, then ``MULTI / SET key tat PX ttl / EXEC``. If another client wrote the key in
    between, ``EXEC`` fails (WatchError) and the hit is retried from the read, at most
    ``max_attempts`` times with a short jittered pause, then gives up with
    :class:`~miaou.errors.Unavailable` rather than guess. The TTL is the time until the
    bucket is full again (rounded up to the ms, at least 1 ms): an expired key and a
    missing key mean the same thing, so Redis forgets idle buckets by itself.

    Redis failures (connection, timeout, OOM, read-only replica, ...) become
    :class:`~miaou.errors.Unavailable` here; no ``redis`` exception escapes.

    The store does not own a client passed in (``close`` leaves it open); one made by
    :meth:`from_url` is owned and closed by ``close``.
    """

    def __init__(
        self,
        client: Redis,
        prefix: str = "miaou:rl:",
        *,
        max_attempts: int = 8,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {max_attempts!r}")
        self._client = client
        self._prefix = prefix
        self._max_attempts = max_attempts
        self._owns_client = False
        self._locks: dict[str, _KeyLock] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str = "miaou:rl:", *, max_attempts: int = 8) -> RedisStore:
        store = cls(Redis.from_url(url), prefix, max_attempts=max_attempts)
        store._owns_client = True
        return store

    async def hit(self, key: str, limit: Limit, now: float, cost: int = 1) -> Decision:
        name = self._prefix + key
        # Tasks of this process that hit the same key queue here instead of racing each
        # other in Redis: the WATCH retries are then left for the rarer races between nodes.
        entry = self._locks.setdefault(name, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                return await self._hit(name, limit, now, cost)
        finally:
            entry.users -= 1
            if entry.users == 0:  # the last user removes it: the dict stays small
                del self._locks[name]

    async def _hit(self, name: str, limit: Limit, now: float, cost: int) -> Decision:
        try:
            for attempt in range(self._max_attempts):
                decision = await self._try_hit(name, limit, now, cost)
                if decision is not None:
                    return decision
                if attempt + 1 < self._max_attempts:
                    await asyncio.sleep(_backoff(attempt))
        except RedisError as exc:
            raise Unavailable("The rate limit store is unreachable.") from exc
        except OSError as exc:  # a socket error redis-py did not wrap
            raise Unavailable("The rate limit store is unreachable.") from exc
        raise Unavailable("The rate limit store is too contended; try again.")

    async def _try_hit(self, name: str, limit: Limit, now: float, cost: int) -> Decision | None:
        """One CAS round; None when another writer won the race."""
        async with self._client.pipeline(transaction=True) as pipe:
            await pipe.watch(name)
            raw = await pipe.get(name)
            decision = decide(_parse_tat(raw), now, limit, cost)
            if not decision.allowed:
                return decision  # nothing to write; leaving the block UNWATCHes
            ttl_ms = max(1, math.ceil(decision.reset_after * 1000))
            pipe.multi()  # type: ignore[no-untyped-call]  # redis-py leaves it unannotated
            # repr() round-trips a float exactly.
            pipe.set(name, repr(decision.tat), px=ttl_ms)
            try:
                await pipe.execute()
            except WatchError:
                return None
            return decision

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class _KeyLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _parse_tat(raw: object) -> float | None:
    """The stored TAT, or None for a missing key.

    A value that is not a finite float (someone wrote into our namespace) is treated as an
    empty bucket and overwritten by the next allowed hit: failing every request on that key
    forever would be worse than one fresh burst.
    """
    if raw is None:
        return None
    try:
        tat = float(raw) if isinstance(raw, str | bytes) else None
    except ValueError:
        return None
    return tat if tat is not None and math.isfinite(tat) else None


def _backoff(attempt: int) -> float:
    """Full-jitter pause before retry ``attempt + 1``: up to 1, 2, 4, ... ms, capped at 50."""
    # Jitter only de-synchronises competing writers; it needs no cryptographic randomness.
    return random.uniform(0.0, min(0.05, 0.001 * 2**attempt))  # noqa: S311
