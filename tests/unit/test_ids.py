"""Snowflake ids: order, recoverable time and worker, uniqueness, bounds and parsing."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from miaou import ids
from miaou.ids import (
    MAX_ID,
    MAX_WORKER,
    MIAOU_EPOCH_MS,
    IdGenerator,
    id_time,
    id_time_ms,
    id_worker,
    invite_code,
    parse_id,
    smallest_id_at,
)

PER_MS = 4096  # ids per millisecond per worker (12 sequence bits)
LAST_MS = MIAOU_EPOCH_MS + (1 << 41) - 1  # the last millisecond ids can encode

workers = st.integers(min_value=0, max_value=MAX_WORKER)
# Well inside the range, so a random walk from here never leaves it.
start_times = st.integers(min_value=MIAOU_EPOCH_MS + 1_000_000, max_value=LAST_MS - 1_000_000)
# Clock steps: stalls (0) and backward steps are as likely as forward ones.
clock_steps = st.lists(st.integers(min_value=-50, max_value=50), min_size=1, max_size=300)


class Clock:
    """An injectable clock that tests move by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def walk(gen: IdGenerator, clock: Clock, steps: list[int]) -> list[tuple[int, int]]:
    """(clock value, id) for one id per clock step."""
    made = []
    for step in steps:
        clock.now += step
        made.append((clock.now, gen.next_id()))
    return made


@given(worker=workers, start=start_times, steps=clock_steps)
def test_ids_strictly_increase_and_keep_time_and_worker(worker, start, steps) -> None:
    clock = Clock(start)
    made = walk(IdGenerator(worker, clock_ms=clock), clock, steps)
    ids_made = [i for _, i in made]
    assert all(a < b for a, b in pairwise(ids_made))
    highest = 0
    for now, snowflake in made:
        highest = max(highest, now)
        # Fewer than 4,096 ids: no borrowing, so the id carries the latest clock value seen
        # (the clock going back does not move ids back in time).
        assert id_time_ms(snowflake) == highest
        assert id_worker(snowflake) == worker
        assert 0 < snowflake <= MAX_ID


def test_ids_keep_increasing_when_the_clock_goes_back() -> None:
    clock = Clock(MIAOU_EPOCH_MS + 1_000_000)
    gen = IdGenerator(3, clock_ms=clock)
    before = gen.next_id()
    clock.now -= 60_000  # an NTP step back by a minute
    after = [gen.next_id() for _ in range(10)]
    assert before < after[0] and after == sorted(set(after))
    assert {id_time_ms(i) for i in after} == {MIAOU_EPOCH_MS + 1_000_000}


def test_more_than_4096_ids_in_one_millisecond_borrow_the_next() -> None:
    start = MIAOU_EPOCH_MS + 5_000
    clock = Clock(start)
    gen = IdGenerator(7, clock_ms=clock)
    made = [gen.next_id() for _ in range(3 * PER_MS + 10)]
    assert all(a < b for a, b in pairwise(made))
    assert [id_time_ms(i) - start for i in made] == [k // PER_MS for k in range(len(made))]
    assert {id_worker(i) for i in made} == {7}
    # The clock catches up with part of the borrowed time: ids still go up, nothing repeats.
    clock.now = start + 1
    caught_up = gen.next_id()
    assert caught_up > made[-1] and id_time_ms(caught_up) == start + 3
    # Past the borrowed time, ids carry the clock again.
    clock.now = start + 100
    later = gen.next_id()
    assert id_time_ms(later) == start + 100 and later > caught_up


@settings(max_examples=30)
@given(
    start=start_times,
    bursts=st.lists(
        st.tuples(st.integers(min_value=-3, max_value=3), st.integers(min_value=1, max_value=6000)),
        min_size=1,
        max_size=8,
    ),
)
def test_borrowing_stays_within_the_id_rate(start, bursts) -> None:
    clock = Clock(start)
    gen = IdGenerator(0, clock_ms=clock)
    highest = 0
    made = []
    for step, count in bursts:
        clock.now += step
        highest = max(highest, clock.now)
        made.extend(gen.next_id() for _ in range(count))
        # Time is only borrowed when a millisecond's 4,096 ids are used up.
        drift = id_time_ms(made[-1]) - highest
        assert 0 <= drift <= len(made) // PER_MS
    assert all(a < b for a, b in pairwise(made))


@given(a=workers, b=workers, start=start_times, steps=clock_steps)
def test_generators_with_different_workers_never_collide(a, b, start, steps) -> None:
    if a == b:
        b = (a + 1) % (MAX_WORKER + 1)
    clock = Clock(start)  # the worst case: both read the very same clock
    first, second = IdGenerator(a, clock_ms=clock), IdGenerator(b, clock_ms=clock)
    seen_a, seen_b = set(), set()
    for step in steps:
        clock.now += step
        seen_a.add(first.next_id())
        seen_b.add(second.next_id())
    assert not seen_a & seen_b
    assert {id_worker(i) for i in seen_a} == {a} and {id_worker(i) for i in seen_b} == {b}


def test_every_worker_number_gives_distinct_ids_in_one_millisecond() -> None:
    clock = Clock(MIAOU_EPOCH_MS + 42)
    made = {w: IdGenerator(w, clock_ms=clock).next_id() for w in range(MAX_WORKER + 1)}
    assert len(set(made.values())) == MAX_WORKER + 1
    assert all(id_worker(i) == w for w, i in made.items())


def test_one_generator_is_safe_across_threads() -> None:
    gen = IdGenerator(9)
    results: list[list[int]] = [[] for _ in range(4)]

    def work(out: list[int]) -> None:
        out.extend(gen.next_id() for _ in range(5000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    everything = [i for out in results for i in out]
    assert len(everything) == len(set(everything)) == 20_000
    assert all(out == sorted(out) for out in results)  # each thread sees increasing ids


def test_ids_fit_signed_63_bits_up_to_the_end_of_the_epoch() -> None:
    clock = Clock(LAST_MS)
    gen = IdGenerator(MAX_WORKER, clock_ms=clock)
    made = [gen.next_id() for _ in range(PER_MS)]
    assert made[-1] == MAX_ID == (1 << 63) - 1
    assert all(0 < i <= MAX_ID for i in made)
    # Borrowing past the last millisecond would need a 64th bit: refused, not wrapped.
    with pytest.raises(OverflowError):
        gen.next_id()
    with pytest.raises(OverflowError):
        IdGenerator(0, clock_ms=lambda: LAST_MS + 1).next_id()
    with pytest.raises(OverflowError):
        IdGenerator(0, clock_ms=lambda: MIAOU_EPOCH_MS - 1).next_id()


def test_wall_clock_ids_carry_the_current_time() -> None:
    before = datetime.now(UTC)
    snowflake = IdGenerator(1).next_id()
    after = datetime.now(UTC)
    made_at = id_time(snowflake)
    assert made_at.tzinfo is not None
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= made_at <= after
    assert id_time(snowflake) == datetime.fromtimestamp(id_time_ms(snowflake) / 1000, UTC)


@given(unix_ms=st.integers(min_value=MIAOU_EPOCH_MS + 1, max_value=LAST_MS - 1), worker=workers)
def test_smallest_id_at_bounds_the_ids_of_that_millisecond(unix_ms, worker) -> None:
    gen = IdGenerator(worker, clock_ms=lambda: unix_ms)
    made = [gen.next_id() for _ in range(3)]
    assert all(smallest_id_at(unix_ms) <= i < smallest_id_at(unix_ms + 1) for i in made)
    # It is the id worker 0 makes first at that millisecond: a tight bound, not just any.
    assert IdGenerator(0, clock_ms=lambda: unix_ms).next_id() == smallest_id_at(unix_ms)
    earlier = IdGenerator(MAX_WORKER, clock_ms=lambda: unix_ms - 1).next_id()
    assert earlier < smallest_id_at(unix_ms)


def test_smallest_id_at_before_the_epoch_is_zero() -> None:
    assert smallest_id_at(0) == 0
    assert smallest_id_at(MIAOU_EPOCH_MS - 1) == 0
    assert smallest_id_at(MIAOU_EPOCH_MS + 1) > 0


@pytest.mark.parametrize("worker_id", [-1, MAX_WORKER + 1, 5000])
def test_bad_worker_id_is_refused(worker_id) -> None:
    with pytest.raises(ValueError, match="worker_id"):
        IdGenerator(worker_id)


@pytest.mark.parametrize("worker_id", [0, MAX_WORKER])
def test_worker_id_bounds_are_accepted(worker_id) -> None:
    snowflake = IdGenerator(worker_id, clock_ms=lambda: MIAOU_EPOCH_MS + 1).next_id()
    assert id_worker(snowflake) == worker_id


def test_configure_keeps_ids_unique_and_increasing(monkeypatch) -> None:
    monkeypatch.setattr(ids, "_default", ids._default)  # restored afterwards
    monkeypatch.setattr(ids, "now_ms", lambda: MIAOU_EPOCH_MS + 77)  # a stalled clock
    ids.configure(5)
    first = ids.new_id()
    ids.configure(5)  # e.g. a second node built in the same process
    second = ids.new_id()
    ids.configure(6)
    third = ids.new_id()
    assert first < second < third
    assert [id_worker(i) for i in (first, second, third)] == [5, 5, 6]


@pytest.mark.parametrize("text", ["1", "42", str(MAX_ID), "1234567890123456789"])
def test_parse_id_accepts_positive_decimal_strings(text) -> None:
    assert parse_id(text) == int(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "-1",
        "+1",
        "1e3",
        "1.0",
        "0x10",
        "1_000",
        " 1",
        "1 ",
        "1\n",
        "\u0661\u0662",  # Arabic-Indic 12: str.isdigit() says yes, int() would accept it
        "\uff11\uff12",  # fullwidth 12
        "²",
        str(MAX_ID + 1),
        "9" * 19,
        "1" + "0" * 19,  # 20 digits
        "99999999999999999999",
        "not-a-number",
    ],
)
def test_parse_id_refuses_everything_else(text) -> None:
    assert parse_id(text) is None


@given(st.integers(min_value=-(1 << 70), max_value=1 << 70))
def test_parse_id_of_a_decimal_integer(n) -> None:
    expected = n if 0 < n <= MAX_ID else None
    assert parse_id(str(n)) == expected
    assert parse_id(n) == expected


@given(st.text(max_size=25))
def test_parse_id_accepts_only_ascii_digits(text) -> None:
    value = parse_id(text)
    if value is not None:
        assert text.isascii() and text.isdigit()
        assert value == int(text) and 0 < value <= MAX_ID


@given(worker=workers, start=start_times, steps=clock_steps)
def test_ids_round_trip_through_their_string_form(worker, start, steps) -> None:
    clock = Clock(start)
    for _, snowflake in walk(IdGenerator(worker, clock_ms=clock), clock, steps):
        assert parse_id(str(snowflake)) == snowflake


def test_invite_codes_are_letters_and_digits_only() -> None:
    # A leading "-" made ``miaou invite revoke CODE`` read the code as an option.
    codes = {invite_code(16) for _ in range(2000)}
    assert len(codes) == 2000
    assert all(re.fullmatch(r"[A-Za-z0-9]{16}", code) for code in codes)
    assert len({code[0] for code in codes}) > 50  # every symbol may lead


@given(a=workers, b=workers, start=start_times, steps=clock_steps, lead=st.integers(0, 50))
def test_advancing_past_another_workers_id_sorts_every_later_id_after_it(
    a, b, start, steps, lead
) -> None:
    """Whatever the two workers and clocks, after ``advance_past(x)`` the next ids are
    above ``x``, still increasing, and never ids the other worker could make."""
    clock, theirs = Clock(start), Clock(start + lead)
    mine, other = IdGenerator(a, clock_ms=clock), IdGenerator(b, clock_ms=theirs)
    before = walk(mine, clock, steps[: len(steps) // 2])
    floor = other.next_id()
    mine.advance_past(floor)
    after = walk(mine, clock, steps[len(steps) // 2 :])
    made = [i for _, i in before + after]
    assert all(i > floor for _, i in after)
    assert all(x < y for x, y in pairwise(made))
    assert {id_worker(i) for i in made} == {a}
    # Moved no further than the millisecond after the floor's, or where it already was.
    was = id_time_ms(before[-1][1]) if before else 0
    assert id_time_ms(after[0][1]) <= max(id_time_ms(floor) + 1, after[0][0], was + 1)
