"""A stream hands events on strictly in position order, once each, whatever the arrival."""

from __future__ import annotations

import random

from miaou.bus import Event
from miaou.gateway.streams import WINDOW, Sent, Stream


def event(position: int) -> Event:
    return Event(type="T", stream="guild:1", payload={"n": position}, position=position)


async def loaded(at: int = 0) -> Stream:
    stream = Stream("guild:1")
    stream.delivered = at
    stream.loaded.set_result(None)
    return stream


async def test_out_of_order_arrivals_come_out_in_order_without_duplicates() -> None:
    stream = await loaded()
    arrivals = [event(p) for p in range(1, 201)]
    random.Random(7).shuffle(arrivals)
    arrivals += [event(p) for p in range(1, 201, 7)]  # duplicates, late
    out: list[int] = []
    for item in arrivals:
        out += [e.position or 0 for e in stream.take(item)]
    assert out == list(range(1, 201))
    assert stream.missing() is None


async def test_a_gap_is_reported_until_filled() -> None:
    stream = await loaded(at=10)
    assert stream.take(event(13)) == []
    assert stream.missing() == (10, 12)
    assert [e.position for e in stream.take(event(11))] == [11]
    assert stream.missing() == (11, 12)
    assert [e.position for e in stream.take(event(12))] == [12, 13]
    assert stream.missing() is None


async def test_events_before_loading_wait_and_old_ones_are_dropped() -> None:
    stream = Stream("guild:1")
    assert stream.take(event(4)) == []
    assert stream.take(event(6)) == []
    stream.delivered = 4  # the snapshot already had 4
    stream.loaded.set_result(None)
    assert stream.drain() == []
    assert stream.missing() == (4, 5)
    assert [e.position for e in stream.take(event(5))] == [5, 6]


async def test_the_window_answers_resumes_it_covers() -> None:
    stream = await loaded()
    for p in range(1, WINDOW + 51):
        stream.take(event(p))
        stream.window.append(Sent(p, b"f%d" % p, None))
    assert stream.window_after(WINDOW + 50) == []
    assert [s.position for s in stream.window_after(WINDOW + 40) or []] == list(
        range(WINDOW + 41, WINDOW + 51)
    )
    assert stream.window_after(50) is not None  # first kept is 51: exactly covered
    assert stream.window_after(49) is None  # 50 fell out: the log must answer
