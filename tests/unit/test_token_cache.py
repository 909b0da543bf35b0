"""The token cache alone: hits, TTL expiry on an injected clock, the LRU bound, invalidation."""

from __future__ import annotations

import pytest

from miaou.accounts.token_cache import TokenCache
from miaou.accounts.tokens import new_token, token_hash
from miaou.config import load_settings
from miaou.errors import ConfigError


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def key(n: int) -> bytes:
    return n.to_bytes(32, "big")


def put(cache: TokenCache, k: bytes, user_id: int, session_id: int, last_used_at: int = 5) -> None:
    cache.put(
        k,
        user_id=user_id,
        session_id=session_id,
        is_admin=False,
        disabled=False,
        last_used_at=last_used_at,
        generation=cache.generation,
    )


def test_hit_returns_what_was_cached() -> None:
    cache = TokenCache(10, clock=Clock())
    k = token_hash(new_token())
    assert cache.get(k) is None
    cache.put(
        k,
        user_id=7,
        session_id=70,
        is_admin=True,
        disabled=False,
        last_used_at=123,
        generation=cache.generation,
    )
    hit = cache.get(k)
    assert hit is not None
    assert (hit.user_id, hit.session_id, hit.is_admin, hit.disabled, hit.last_used_at) == (
        7,
        70,
        True,
        False,
        123,
    )
    assert cache.get(key(99)) is None


def test_entries_expire_after_the_ttl() -> None:
    clock = Clock()
    cache = TokenCache(10, clock=clock)
    put(cache, key(1), 1, 10)
    clock.now += 9.999
    assert cache.get(key(1)) is not None  # a hit does not extend the entry's life
    clock.now += 0.001
    assert cache.get(key(1)) is None
    assert len(cache) == 0


def test_zero_ttl_stores_nothing() -> None:
    cache = TokenCache(0, clock=Clock())
    put(cache, key(1), 1, 10)
    assert cache.get(key(1)) is None
    assert len(cache) == 0


def test_least_recently_used_is_evicted_at_the_bound() -> None:
    cache = TokenCache(10, max_entries=3, clock=Clock())
    for n in (1, 2, 3):
        put(cache, key(n), n, n * 10)
    assert cache.get(key(1)) is not None  # 1 is now the most recently used; 2 the least
    put(cache, key(4), 4, 40)
    assert len(cache) == 3
    assert key(2) not in cache
    assert all(cache.get(key(n)) is not None for n in (1, 3, 4))
    # The evicted entry left the per-user index too: invalidating its user is harmless.
    cache.invalidate_user(2)
    assert len(cache) == 3


def test_default_bound_is_ten_thousand() -> None:
    cache = TokenCache(10, clock=Clock())
    for n in range(10_050):
        put(cache, key(n), n % 7, n)
    assert len(cache) == 10_000
    assert key(49) not in cache and key(50) in cache


def test_invalidate_session_drops_only_that_session() -> None:
    cache = TokenCache(10, clock=Clock())
    put(cache, key(1), 1, 10)
    put(cache, key(2), 1, 11)
    put(cache, key(3), 2, 20)
    cache.invalidate_session(1, 10)
    assert cache.get(key(1)) is None
    assert cache.get(key(2)) is not None and cache.get(key(3)) is not None
    cache.invalidate_session(2, 11)  # session 11 is user 1's: not user 2's to drop
    assert cache.get(key(2)) is not None


def test_invalidate_user_drops_all_their_sessions_but_the_kept_one() -> None:
    cache = TokenCache(10, clock=Clock())
    for n, (user, session) in enumerate([(1, 10), (1, 11), (1, 12), (2, 20)]):
        put(cache, key(n), user, session)
    cache.invalidate_user(1, keep_session=11)
    assert [cache.get(key(n)) is not None for n in range(4)] == [False, True, False, True]
    cache.invalidate_user(1)
    assert [cache.get(key(n)) is not None for n in range(4)] == [False, False, False, True]


def test_a_read_from_before_an_invalidation_is_not_cached() -> None:
    cache = TokenCache(10, clock=Clock())
    seen = cache.generation  # a request starts its database read ...
    cache.invalidate_session(1, 10)  # ... a logout commits and invalidates meanwhile ...
    entry = cache.put(
        key(1),
        user_id=1,
        session_id=10,
        is_admin=False,
        disabled=False,
        last_used_at=5,
        generation=seen,
    )
    assert entry.session_id == 10  # the caller still gets what it read, for this request
    assert cache.get(key(1)) is None  # ... but the stale read is not kept


def test_a_replaced_entry_keeps_the_index_consistent() -> None:
    cache = TokenCache(10, clock=Clock())
    put(cache, key(1), 1, 10, last_used_at=1)
    put(cache, key(1), 1, 10, last_used_at=2)
    hit = cache.get(key(1))
    assert len(cache) == 1 and hit is not None and hit.last_used_at == 2
    cache.invalidate_user(1)
    assert len(cache) == 0


def test_auth_cache_seconds_setting(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray ./miaou.toml
    assert load_settings(environ={}).auth_cache_seconds == 10.0
    from_env = load_settings(environ={"MIAOU_AUTH_CACHE_SECONDS": "2.5"})
    assert from_env.auth_cache_seconds == 2.5
    assert load_settings(environ={}, overrides={"auth_cache_seconds": 0}).auth_cache_seconds == 0
    assert load_settings(environ={}, overrides={"auth_cache_seconds": 300}).auth_cache_seconds
    for bad in ("-1", "300.5", "nan"):
        with pytest.raises(ConfigError, match="auth_cache_seconds"):
            load_settings(environ={"MIAOU_AUTH_CACHE_SECONDS": bad})
