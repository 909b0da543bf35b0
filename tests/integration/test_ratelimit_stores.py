"""One contract for every RateLimitStore, run against MemoryStore and a real Redis.

Redis: MIAOU_TEST_REDIS_URL, else redis://127.0.0.1:6379/15. Each test uses its own random
key prefix and deletes its keys afterwards. If Redis is unreachable the redis cases are
skipped, unless CI is set, where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from miaou.errors import Unavailable
from miaou.ratelimit import Decision, Limit, MemoryStore, RateLimitStore, RedisStore

REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL") or "redis://127.0.0.1:6379/15"
NOW = 1_700_000_000.0
FIVE_PER_TEN = Limit(count=5, period=10.0)  # T = 2 s


async def _redis_or_skip() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=5)
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        reason = f"Redis unreachable at {REDIS_URL} ({exc!r})"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so Redis tests must run")
        pytest.skip(f"{reason}; set MIAOU_TEST_REDIS_URL or start Redis to run these")
    return client


@pytest.fixture
async def redis_client() -> AsyncIterator[tuple[Redis, str]]:
    """A live client and a fresh key prefix, cleaned up afterwards."""
    client = await _redis_or_skip()
    prefix = f"miaou:test:rl:{uuid.uuid4().hex}:"
    try:
        yield client, prefix
    finally:
        # Bounded: only this test's keys match the random prefix.
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RateLimitStore]:
    if request.param == "memory":
        memory = MemoryStore()
        yield memory
        await memory.close()
        return
    client = await _redis_or_skip()
    prefix = f"miaou:test:rl:{uuid.uuid4().hex}:"
    redis_store = RedisStore(client, prefix)
    try:
        yield redis_store
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=500)]
        if keys:
            await client.delete(*keys)
        await redis_store.close()
        await client.aclose()


async def hits(store: RateLimitStore, key: str, n: int, now: float = NOW) -> list[Decision]:
    return [await store.hit(key, FIVE_PER_TEN, now) for _ in range(n)]


# ------------------------------------------------------------------------------ contract


async def test_is_a_rate_limit_store(store: RateLimitStore) -> None:
    assert isinstance(store, RateLimitStore)


async def test_burst_then_refusal(store: RateLimitStore) -> None:
    ds = await hits(store, "k", 6)
    assert [d.allowed for d in ds] == [True] * 5 + [False]
    assert [d.remaining for d in ds] == [4, 3, 2, 1, 0, 0]
    assert ds[-1].retry_after == pytest.approx(2.0)
    assert ds[-1].reset_after == pytest.approx(10.0)


async def test_keys_are_independent(store: RateLimitStore) -> None:
    await hits(store, "user:1", 5)
    assert not (await store.hit("user:1", FIVE_PER_TEN, NOW)).allowed
    # Neighbouring keys, including ones sharing a prefix, are untouched.
    for other in ("user:2", "user:10", "user:1:x", "user"):
        d = await store.hit(other, FIVE_PER_TEN, NOW)
        assert (d.allowed, d.remaining) == (True, 4), other


async def test_refill_over_time(store: RateLimitStore) -> None:
    await hits(store, "k", 5)
    # Just before one emission interval: nothing yet.
    assert not (await store.hit("k", FIVE_PER_TEN, NOW + 1.999)).allowed
    # After one interval (2 s): exactly one more.
    assert [d.allowed for d in await hits(store, "k", 2, NOW + 2.0)] == [True, False]
    # A full period after that: the whole burst again, and no more.
    again = await hits(store, "k", 6, NOW + 12.0)
    assert [d.allowed for d in again] == [True] * 5 + [False]


async def test_a_refused_hit_leaves_state_unchanged(store: RateLimitStore) -> None:
    last = (await hits(store, "k", 5))[-1]
    for t in (NOW, NOW + 0.5, NOW + 1.0, NOW + 1.5):
        refused = await store.hit("k", FIVE_PER_TEN, t)
        assert not refused.allowed
        assert refused.tat == last.tat
    # Had any refusal been recorded, this would be refused too.
    assert (await store.hit("k", FIVE_PER_TEN, NOW + 2.0)).allowed


async def test_cost(store: RateLimitStore) -> None:
    assert (await store.hit("k", FIVE_PER_TEN, NOW, cost=4)).remaining == 1
    refused = await store.hit("k", FIVE_PER_TEN, NOW, cost=2)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(2.0)
    assert (await store.hit("k", FIVE_PER_TEN, NOW, cost=1)).allowed


async def test_state_survives_in_the_store_exactly(store: RateLimitStore) -> None:
    # An awkward interval (not a binary fraction) at an epoch time with sub-ms digits: the
    # stored TAT must round-trip bit for bit, or the backlog drifts with every hit.
    limit = Limit(count=3, period=10.0)
    now = NOW + 0.1234567
    ds = [await store.hit("k", limit, now) for _ in range(4)]
    assert [d.allowed for d in ds] == [True] * 3 + [False]
    assert [d.reset_after for d in ds] == pytest.approx([10 / 3, 20 / 3, 10.0, 10.0], abs=1e-6)
    assert ds[-1].tat == ds[-2].tat


async def test_concurrent_hits_never_exceed_the_limit(store: RateLimitStore) -> None:
    # 30 tasks race on one key at one instant; without a working compare-and-set in the
    # Redis store all 30 would read "empty" and pass.
    tasks, limit = 30, Limit(count=10, period=10.0)  # T = 1 s

    async def one() -> Decision:
        return await store.hit("hot", limit, NOW)

    results = await asyncio.gather(*(one() for _ in range(tasks)), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert all(isinstance(e, Unavailable) for e in errors), errors
    allowed = sum(1 for r in results if isinstance(r, Decision) and r.allowed)
    assert allowed <= limit.count
    assert allowed == limit.count or errors  # only contention may leave capacity unused
    # No lost update: the bucket holds exactly one interval per admitted request.
    probe = await store.hit("hot", limit, NOW)
    expected = allowed + (1 if probe.allowed else 0)
    assert probe.reset_after == pytest.approx(expected * limit.emission_interval)


# --------------------------------------------------------------------- MemoryStore only


async def test_memory_store_stays_within_max_keys() -> None:
    store = MemoryStore(max_keys=16)
    limit = Limit(count=3, period=60.0)
    for i in range(1000):
        await store.hit(f"ip:{i}", limit, NOW + i * 0.001)
        assert len(store) <= 16


async def test_memory_store_evicts_expired_buckets_first() -> None:
    store = MemoryStore(max_keys=8)
    short, long = Limit(count=1, period=1.0), Limit(count=1, period=3600.0)
    for i in range(4):
        await store.hit(f"live:{i}", long, NOW)  # written first: the oldest
    for i in range(4):
        await store.hit(f"idle:{i}", short, NOW)
    # 10 s later the idle buckets are full again (expired); the live ones are not.
    assert (await store.hit("new", short, NOW + 10.0)).allowed
    assert len(store) == 5
    for i in range(4):
        assert not (await store.hit(f"live:{i}", long, NOW + 10.0)).allowed


async def test_memory_store_evicts_least_recently_written_when_all_live() -> None:
    store = MemoryStore(max_keys=16)  # low-water mark: 14
    limit = Limit(count=1, period=3600.0)
    for i in range(16):
        await store.hit(f"k{i}", limit, NOW + i)  # TAT of k{i}: NOW + i + 3600
    # k0 has just refilled; hitting it again rewrites it, making it the most recent write.
    assert (await store.hit("k0", limit, NOW + 3600.0)).allowed
    # A new key while full and nothing expired: the two least recently written (k1, k2)
    # go, down to the low-water mark, then the new key comes in.
    assert (await store.hit("new", limit, NOW + 3600.5)).allowed
    assert len(store) == 15
    later = NOW + 3600.75
    for key in ("k0", *(f"k{i}" for i in range(3, 16)), "new"):
        assert not (await store.hit(key, limit, later)).allowed, key  # remembered
    for key in ("k1", "k2"):
        assert (await store.hit(key, limit, later)).allowed, key  # forgotten: fresh burst


def test_memory_store_rejects_a_silly_bound() -> None:
    with pytest.raises(ValueError):
        MemoryStore(max_keys=0)


# ---------------------------------------------------------------------- RedisStore only


async def stored(client: Redis, name: str) -> float:
    raw = await client.get(name)
    assert isinstance(raw, bytes)
    return float(raw)


async def test_redis_store_writes_tat_with_expiry(redis_client: tuple[Redis, str]) -> None:
    client, prefix = redis_client
    store = RedisStore(client, prefix)
    d = await store.hit("k", FIVE_PER_TEN, NOW)
    assert await stored(client, f"{prefix}k") == d.tat
    # Expires when the bucket is full again: reset_after = 2 s.
    assert 1500 < await client.pttl(f"{prefix}k") <= 2000
    refused = [await store.hit("k", FIVE_PER_TEN, NOW) for _ in range(5)][-1]
    assert not refused.allowed
    assert 9000 < await client.pttl(f"{prefix}k") <= 10000
    # A refusal writes nothing: not even the expiry is touched.
    await client.pexpire(f"{prefix}k", 60_000)
    assert not (await store.hit("k", FIVE_PER_TEN, NOW)).allowed
    assert await client.pttl(f"{prefix}k") > 50_000


async def test_redis_store_treats_garbage_as_an_empty_bucket(
    redis_client: tuple[Redis, str],
) -> None:
    client, prefix = redis_client
    store = RedisStore(client, prefix)
    for garbage in ("not a float", "inf", "nan"):
        await client.set(f"{prefix}k", garbage)
        d = await store.hit("k", FIVE_PER_TEN, NOW)
        assert (d.allowed, d.remaining) == (True, 4)
        assert await stored(client, f"{prefix}k") == d.tat


async def test_redis_store_gives_up_under_contention_but_stays_exact(
    redis_client: tuple[Redis, str],
) -> None:
    client, prefix = redis_client
    # One store per simulated node: a store serialises its own hits on a key, so only
    # hits from different stores (nodes) race in Redis. Every conflict is final here.
    nodes = [RedisStore(client, prefix, max_attempts=1) for _ in range(30)]
    limit = Limit(count=10, period=10.0)
    results = await asyncio.gather(
        *(store.hit("hot", limit, NOW) for store in nodes), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors, "30 simultaneous CAS rounds with no retry should conflict"
    assert all(isinstance(e, Unavailable) for e in errors), errors
    allowed = sum(1 for r in results if isinstance(r, Decision) and r.allowed)
    assert 1 <= allowed <= limit.count
    assert await stored(client, f"{prefix}hot") == pytest.approx(NOW + allowed)


async def test_one_store_serialises_its_own_hits_on_a_key(
    redis_client: tuple[Redis, str],
) -> None:
    client, prefix = redis_client
    store = RedisStore(client, prefix, max_attempts=1)  # a conflict would be final
    limit = Limit(count=50, period=10.0)
    results = await asyncio.gather(*(store.hit("busy", limit, NOW) for _ in range(90)))
    assert sum(r.allowed for r in results) == 50
    assert store._locks == {}  # nothing left behind once the hits are done


async def test_redis_store_unreachable_is_unavailable() -> None:
    # Port 1 on loopback: nothing listens; the connection is refused at once.
    client = Redis(host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))
    store = RedisStore(client)
    try:
        with pytest.raises(Unavailable) as info:
            await store.hit("k", FIVE_PER_TEN, NOW)
        assert isinstance(info.value.__cause__, RedisError)
    finally:
        await client.aclose()


async def test_redis_store_from_url_owns_its_client(redis_client: tuple[Redis, str]) -> None:
    _, prefix = redis_client
    store = RedisStore.from_url(REDIS_URL, prefix)
    assert (await store.hit("k", FIVE_PER_TEN, NOW)).allowed
    await store.close()
    # Its pool is closed; a client passed in (the fixture's) is never closed by the store.
    borrowed = RedisStore(redis_client[0], prefix)
    await borrowed.close()
    assert (await borrowed.hit("k", FIVE_PER_TEN, NOW)).remaining == 3
