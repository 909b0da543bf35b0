"""The stall decisions, fed the times: no sleeping."""

from __future__ import annotations

import threading

import pytest

from miaou.observability.loop_watch import Resumed, StallClock, Stalled, loop_stack


def test_a_late_beat_is_reported_once_and_its_end_with_its_length() -> None:
    clock = StallClock(1.0, now=100.0)
    assert clock.check(100.75) is None
    assert clock.beat(100.875) is None  # on time: nothing to say
    assert clock.check(101.75) is None  # 0.875 s since the beat: under the threshold
    assert clock.check(102.5) == Stalled(1.625)
    assert clock.check(104.0) is None  # the same stall: said once
    assert clock.beat(105.0) == Resumed(4.125)
    assert clock.beat(105.25) is None
    assert clock.check(106.0) is None


def test_a_second_stall_is_reported_again() -> None:
    clock = StallClock(0.5, now=0.0)
    assert clock.check(0.6) == Stalled(0.6)
    assert clock.beat(0.7) == Resumed(0.7)
    assert clock.check(1.1) is None
    stalled = clock.check(1.3)
    assert stalled is not None and stalled.blocked_s == pytest.approx(0.6)
    resumed = clock.beat(1.4)
    assert resumed is not None and resumed.lasted_s == pytest.approx(0.7)


def test_the_stack_is_the_named_threads() -> None:
    stack = loop_stack(threading.get_ident())
    # Innermost last: loop_stack itself, then its caller.
    assert stack[-1].endswith("in loop_stack")
    assert stack[-2].endswith("in test_the_stack_is_the_named_threads")
    assert loop_stack(-1) == []
