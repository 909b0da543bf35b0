"""One contract for both presence books: this process's (LocalPresence) and the cluster's
in Redis (RedisPresence, when MIAOU_TEST_REDIS_URL is set; CI sets it)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest

from miaou.gateway.presence import LocalPresence, Presence, RedisPresence

REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL", "")
KINDS = ["local", "redis"] if REDIS_URL else ["local"]


@pytest.fixture(params=KINDS)
async def book(request: pytest.FixtureRequest) -> AsyncIterator[Presence]:
    made: Presence = (
        LocalPresence()
        if request.param == "local"
        else RedisPresence(REDIS_URL, f"test-{secrets.token_hex(6)}")
    )
    await made.start()
    yield made
    await made.close()


async def test_online_from_first_session_to_last(book: Presence) -> None:
    assert await book.arrive(1) is True
    assert await book.arrive(1) is False
    assert await book.leave(1) is False
    assert await book.leave(1) is True
    assert await book.arrive(1) is True


async def test_statuses_list_who_is_online_and_how(book: Presence) -> None:
    for user in (1, 2, 3, 4):
        await book.arrive(user)
    await book.set_status(1, "online")
    await book.set_status(2, "dnd")
    await book.set_status(3, "offline")  # invisible: shown offline, so not listed
    # 4 arrived invisible and never set a status; 5 never came.
    assert await book.statuses([1, 2, 3, 4, 5]) == {1: "online", 2: "dnd"}
    assert await book.statuses([2]) == {2: "dnd"}
    assert await book.statuses([]) == {}
    await book.set_status(1, "idle")  # the last status set wins
    assert await book.statuses([1]) == {1: "idle"}


async def test_the_status_goes_with_the_last_session(book: Presence) -> None:
    await book.arrive(7)
    await book.arrive(7)
    await book.set_status(7, "idle")
    await book.leave(7)
    assert await book.statuses([7]) == {7: "idle"}  # still one session
    await book.leave(7)
    assert await book.statuses([7]) == {}
    await book.set_status(7, "dnd")  # late, after the last session: dropped
    assert await book.statuses([7]) == {}
    await book.arrive(7)
    assert await book.statuses([7]) == {}  # back, with no status until one is set


async def test_many_users_at_once(book: Presence) -> None:
    users = range(1, 1201)  # more than one batch of the Redis script
    for user in users:
        await book.arrive(user)
        await book.set_status(user, "online" if user % 3 else "offline")
    found = await book.statuses(users)
    assert found == {u: "online" for u in users if u % 3}


@pytest.mark.skipif(not REDIS_URL, reason="needs MIAOU_TEST_REDIS_URL")
async def test_a_crashed_instance_leaves_no_status_behind() -> None:
    namespace = f"test-{secrets.token_hex(6)}"
    crashed, alive = RedisPresence(REDIS_URL, namespace), RedisPresence(REDIS_URL, namespace)
    await crashed.start()
    await alive.start()
    try:
        await crashed.arrive(9)
        await crashed.set_status(9, "dnd")
        assert await alive.statuses([9]) == {9: "dnd"}
        await crashed.redis.delete(crashed._alive_key(crashed.instance))
        assert await alive.statuses([9]) == {}
    finally:
        await crashed.close()
        await alive.close()
