"""Laws of the pure GCRA core (miaou.ratelimit.gcra).

Most properties run on a *dyadic grid*: every time is a multiple of 2**-10 s below 2**32 and
the emission interval T is a multiple of 2**-10 too, so every sum the algorithm makes is
exact in binary floating point and the laws can be checked with no tolerance at all. A second
family uses arbitrary floats at Unix-epoch magnitudes, where rounding is real, for the laws
that must survive it (exact burst size, truthful ``remaining``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.ratelimit.gcra import Decision, Limit, decide

GRID = 2.0**-10  # seconds
EPOCH = 1_700_000_000.0


# --------------------------------------------------------------------------- strategies


@dataclass(frozen=True)
class Grid:
    """A limit whose T is an exact multiple of GRID, and a start time on the grid."""

    limit: Limit
    t_units: int  # T / GRID
    start: float

    @property
    def interval(self) -> float:
        return self.t_units * GRID

    def at(self, units: int) -> float:
        return self.start + units * GRID


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    count = draw(st.integers(1, 40))
    t_units = draw(st.integers(1, 2**16))  # T from ~1 ms to 64 s
    start_units = draw(st.integers(0, 2**41))  # up to 2**31 s: epoch-sized
    limit = Limit(count=count, period=count * t_units * GRID)
    assert limit.emission_interval == t_units * GRID  # the grid really is exact
    return Grid(limit=limit, t_units=t_units, start=start_units * GRID)


@st.composite
def grid_histories(
    draw: st.DrawFn, *, backwards: bool = False
) -> tuple[Grid, list[tuple[int, int]]]:
    """A grid and a list of (time offset in grid units, cost), from an empty bucket.

    Offsets are cumulative sums of small steps (many zero: bursts at one instant); with
    ``backwards`` the steps may be negative too (a clock stepping back).
    """
    grid = draw(grids())
    t = grid.t_units
    low = -4 * t * grid.limit.count if backwards else 0
    step = st.one_of(st.just(0), st.integers(low, 2 * t), st.integers(low, t // 4))
    cost = st.integers(1, grid.limit.count)
    steps = draw(st.lists(st.tuples(step, st.one_of(st.just(1), cost)), max_size=60))
    offset, history = 0, []
    for dt, c in steps:
        offset += dt
        history.append((offset, c))
    return grid, history


def run(grid: Grid, history: list[tuple[int, int]]) -> list[tuple[int, int, Decision]]:
    """Apply a history to an empty bucket; returns (offset, cost, decision) per request."""
    tat: float | None = None
    out = []
    for offset, cost in history:
        d = decide(tat, grid.at(offset), grid.limit, cost)
        if d.allowed:
            tat = d.tat
        out.append((offset, cost, d))
    return out


def burst(
    tat: float | None, now: float, limit: Limit, n: int
) -> tuple[float | None, list[Decision]]:
    """``n`` cost-1 requests at one instant, storing the TAT like a store would."""
    decisions = []
    for _ in range(n):
        d = decide(tat, now, limit)
        if d.allowed:
            tat = d.tat
        decisions.append(d)
    return tat, decisions


@st.composite
def epoch_limits(draw: st.DrawFn) -> tuple[Limit, float]:
    """Arbitrary (non-dyadic) limits and times around today's Unix time."""
    count = draw(st.integers(1, 200))
    interval = draw(st.floats(1e-3, 100.0))
    period = count * interval
    now = draw(st.floats(EPOCH, 4e9))
    return Limit(count=count, period=period), now


# ---------------------------------------------------------------------------- examples


def test_example_three_per_three_seconds() -> None:
    limit = Limit(count=3, period=3.0)  # T = 1 s
    tat, ds = burst(None, 100.0, limit, 4)
    assert [d.allowed for d in ds] == [True, True, True, False]
    assert [d.remaining for d in ds] == [2, 1, 0, 0]
    assert [d.tat for d in ds] == [101.0, 102.0, 103.0, 103.0]
    assert [d.reset_after for d in ds] == [1.0, 2.0, 3.0, 3.0]
    assert [d.retry_after for d in ds] == [0.0, 0.0, 0.0, 1.0]
    assert tat == 103.0

    # Half a T later: still refused, half a second to go.
    d = decide(tat, 100.5, limit)
    assert (d.allowed, d.retry_after, d.reset_after, d.tat) == (False, 0.5, 2.5, 103.0)
    # One T later: exactly one more.
    d = decide(tat, 101.0, limit)
    assert (d.allowed, d.tat, d.remaining, d.reset_after) == (True, 104.0, 0, 3.0)
    # Long idle: the bucket is full again, the old TAT is forgotten, not credited.
    d = decide(tat, 500.0, limit)
    assert (d.allowed, d.tat, d.remaining) == (True, 501.0, 2)


def test_example_cost() -> None:
    limit = Limit(count=5, period=10.0)  # T = 2 s
    d = decide(None, 0.0, limit, cost=3)
    assert (d.allowed, d.tat, d.remaining) == (True, 6.0, 2)
    d2 = decide(d.tat, 0.0, limit, cost=3)
    assert (d2.allowed, d2.tat, d2.remaining, d2.retry_after) == (False, 6.0, 2, 2.0)
    d3 = decide(d.tat, 0.0, limit, cost=2)
    assert (d3.allowed, d3.tat, d3.remaining) == (True, 10.0, 0)


def test_example_single_request_limit() -> None:
    limit = Limit(count=1, period=60.0)
    d = decide(None, 10.0, limit)
    assert (d.allowed, d.remaining, d.reset_after) == (True, 0, 60.0)
    refused = decide(d.tat, 69.5, limit)
    assert (refused.allowed, refused.retry_after) == (False, 0.5)
    assert decide(d.tat, 70.0, limit).allowed


def test_example_epoch_burst_of_hundred_per_second() -> None:
    # T = 0.01 s is not a binary fraction and now ~ 1.7e9 s: the sums round at every step.
    limit = Limit(count=100, period=1.0)
    now = EPOCH + 0.123
    _, ds = burst(None, now, limit, 101)
    assert [d.allowed for d in ds] == [True] * 100 + [False]
    assert [d.remaining for d in ds] == [*range(99, -1, -1), 0]
    assert ds[-1].retry_after == pytest.approx(0.01, abs=1e-5)


def test_clock_stepping_back_makes_it_stricter() -> None:
    limit = Limit(count=2, period=2.0)
    d = decide(None, 1000.0, limit)
    assert d.allowed
    # The clock steps back 10 s: the bucket looks 10 s fuller, so refused, retry in 9 s.
    back = decide(d.tat, 990.0, limit)
    assert (back.allowed, back.remaining, back.tat) == (False, 0, d.tat)
    assert back.retry_after == 10.0
    assert back.reset_after == 11.0


@pytest.mark.parametrize(
    ("count", "period"),
    [(0, 1.0), (-1, 1.0), (1, 0.0), (1, -1.0), (1, math.inf), (1, math.nan), (True, 1.0)],
)
def test_limit_validation(count: int, period: float) -> None:
    with pytest.raises(ValueError):
        Limit(count=count, period=period)


def test_limit_decodes_and_validates_via_msgspec() -> None:
    assert msgspec.convert({"count": 5, "period": 60}, Limit) == Limit(5, 60.0)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"count": 0, "period": 60}, Limit)


@pytest.mark.parametrize(
    ("tat", "now", "cost"),
    [
        (None, 0.0, 0),
        (None, 0.0, 4),  # more than the burst: could never pass
        (None, 0.0, True),
        (None, math.nan, 1),
        (None, math.inf, 1),
        (math.inf, 0.0, 1),
        (math.nan, 0.0, 1),
    ],
)
def test_decide_validation(tat: float | None, now: float, cost: int) -> None:
    with pytest.raises(ValueError):
        decide(tat, now, Limit(3, 1.0), cost)


# ------------------------------------------------------------------ laws: burst, remaining


@given(grids())
def test_burst_from_empty_is_exactly_count(g: Grid) -> None:
    n = g.limit.count
    _, ds = burst(None, g.start, g.limit, n + 2)
    assert [d.allowed for d in ds] == [True] * n + [False, False]
    assert [d.remaining for d in ds] == [*range(n - 1, -1, -1), 0, 0]
    assert ds[n].retry_after == g.interval


@given(epoch_limits())
def test_burst_from_empty_is_exactly_count_at_epoch_magnitudes(case: tuple[Limit, float]) -> None:
    limit, now = case
    n = limit.count
    _, ds = burst(None, now, limit, n + 1)
    assert [d.allowed for d in ds] == [True] * n + [False]
    assert [d.remaining for d in ds] == [*range(n - 1, -1, -1), 0]
    # Each of the n sums may round by half an ulp of `now`.
    assert ds[n].retry_after == pytest.approx(limit.emission_interval, abs=n * math.ulp(now))


@given(grid_histories(backwards=True))
def test_remaining_is_truthful_bounded_and_monotone_within_an_instant(
    case: tuple[Grid, list[tuple[int, int]]],
) -> None:
    g, history = case
    tat: float | None = None
    for offset, cost in history:
        now = g.at(offset)
        d = decide(tat, now, g.limit, cost)
        if d.allowed:
            tat = d.tat
        assert 0 <= d.remaining <= g.limit.count
        # Exactly `remaining` more cost-1 requests pass at this instant, each reporting one
        # less than the previous (monotone), then one is refused.
        _, more = burst(tat, now, g.limit, d.remaining + 1)
        assert [m.allowed for m in more] == [True] * d.remaining + [False]
        assert [m.remaining for m in more] == [*range(d.remaining - 1, -1, -1), 0]


@given(epoch_limits(), st.lists(st.floats(0.0, 50.0), max_size=30))
def test_remaining_is_truthful_at_epoch_magnitudes(
    case: tuple[Limit, float], gaps: list[float]
) -> None:
    limit, now = case
    tat: float | None = None
    for gap in gaps:
        now += gap * limit.emission_interval
        d = decide(tat, now, limit)
        if d.allowed:
            tat = d.tat
        assert 0 <= d.remaining <= limit.count
        nxt = decide(tat, now, limit)
        assert nxt.allowed == (d.remaining > 0)
        if nxt.allowed:
            assert nxt.remaining == d.remaining - 1


@given(st.integers(1, 60), st.floats(1e-3, 1e4), st.data())
def test_remaining_agrees_with_the_next_request_right_at_the_boundaries(
    count: int, period: float, data: st.DataObject
) -> None:
    """States whose backlog sits within rounding distance of "k + 1 more fit", where a count
    from a quotient and the fit test itself are most likely to disagree."""
    limit = Limit(count=count, period=period)
    k = data.draw(st.integers(0, count - 1))
    # Coarse: a few ulps of period either side (the float slack is a few ulps per request);
    # fine: then a few ulps of the value itself.
    tat = period - (k + 1) * limit.emission_interval
    tat += data.draw(st.integers(-8 * count, 8 * count)) * math.ulp(period)
    for _ in range(data.draw(st.integers(0, 4))):
        tat = math.nextafter(tat, data.draw(st.sampled_from([math.inf, -math.inf])))
    tat = max(tat, 0.0)
    # now = 0: the backlog is the TAT itself, to the last bit.
    for _ in range(count + 1):  # walk the bucket down; the promise must hold at every step
        d = decide(tat, 0.0, limit)
        if not d.allowed:
            break
        tat = d.tat
        assert decide(tat, 0.0, limit).allowed == (d.remaining > 0)
    assert not decide(tat, 0.0, limit).allowed


# ----------------------------------------------------------------- laws: the rate holds


@given(grid_histories())
def test_no_window_admits_more_than_burst_plus_rate(
    case: tuple[Grid, list[tuple[int, int]]],
) -> None:
    """In any window [a, b], admitted cost <= count + (b - a) / T (a bucket starts empty)."""
    g, history = case
    admitted = [(offset, cost) for offset, cost, d in run(g, history) if d.allowed]
    for i, (a, _) in enumerate(admitted):
        total = 0
        for b, cost in admitted[i:]:
            total += cost
            # In grid units: (b - a) / T == (b - a) / t_units; compare without division.
            assert total * g.t_units <= g.limit.count * g.t_units + (b - a)


@given(grids(), st.integers(1, 50))
def test_the_sustained_rate_is_reachable(g: Grid, periods: int) -> None:
    """After the burst, one request per T passes, forever, and never a second one."""
    tat, _ = burst(None, g.start, g.limit, g.limit.count)
    for k in range(1, periods + 1):
        now = g.at(k * g.t_units)
        tat, ds = burst(tat, now, g.limit, 2)
        assert [d.allowed for d in ds] == [True, False]


@given(grids(), st.integers(0, 2**20))
def test_an_idle_bucket_refills_to_count_and_no_more(g: Grid, idle_units: int) -> None:
    tat, ds = burst(None, g.start, g.limit, g.limit.count)
    last = ds[-1]
    # After reset_after the bucket is full again: a whole burst, and exactly that.
    full_at = g.start + last.reset_after
    assert last.reset_after == g.limit.period
    _, again = burst(tat, full_at + idle_units * GRID, g.limit, g.limit.count + 1)
    assert [d.allowed for d in again] == [True] * g.limit.count + [False]
    # Just before it, the bucket is not yet full.
    _, early = burst(tat, full_at - GRID, g.limit, g.limit.count)
    assert not early[-1].allowed


# ------------------------------------------------------------ laws: refusal, retry_after


@given(grid_histories(backwards=True), st.integers(1, 40))
def test_a_refused_request_changes_nothing(
    case: tuple[Grid, list[tuple[int, int]]], cost_seed: int
) -> None:
    g, history = case
    tat: float | None = None
    for offset, cost, d in run(g, history):
        if not d.allowed:
            assert tat is not None  # an unknown bucket is never refused
            assert d.tat == tat
            assert d.retry_after > 0
            # Pure: the same question gets the same answer, and the answer to any other
            # question is as if the refused request had never been made.
            now = g.at(offset)
            assert decide(tat, now, g.limit, cost) == d
            other = 1 + cost_seed % g.limit.count
            assert decide(d.tat, now, g.limit, other) == decide(tat, now, g.limit, other)
        else:
            assert d.retry_after == 0.0
            tat = d.tat


@given(grid_histories(backwards=True))
def test_retry_after_is_exact(case: tuple[Grid, list[tuple[int, int]]]) -> None:
    g, history = case
    tat: float | None = None
    for offset, cost, d in run(g, history):
        if d.allowed:
            tat = d.tat
            continue
        assert tat is not None
        when = g.at(offset) + d.retry_after
        assert decide(tat, when, g.limit, cost).allowed
        # One grid step earlier (the finest time there is here) is still too early.
        assert not decide(tat, when - GRID, g.limit, cost).allowed


@given(epoch_limits(), st.floats(0.0, 3.0), st.integers(1, 200))
def test_retry_after_suffices_at_epoch_magnitudes(
    case: tuple[Limit, float], used: float, cost_seed: int
) -> None:
    limit, now = case
    cost = 1 + cost_seed % limit.count
    # A bucket `used` periods deep (more than 1: the clock went back).
    tat = now + used * limit.period
    d = decide(tat, now, limit, cost)
    if not d.allowed:
        assert d.retry_after > 0
        assert decide(tat, now + d.retry_after, limit, cost).allowed


# ------------------------------------------------------------------- laws: time and order


@given(grid_histories(backwards=True))
def test_a_clock_going_backwards_never_grants_more(
    case: tuple[Grid, list[tuple[int, int]]],
) -> None:
    """Admitted cost <= count + (latest time seen - first admission) / T, in any order."""
    g, history = case
    results = run(g, history)
    admitted = [(offset, cost) for offset, cost, d in results if d.allowed]
    if not admitted:
        return
    first = admitted[0][0]
    latest = first
    total = 0
    for offset, cost, d in results:
        latest = max(latest, offset)
        if d.allowed:
            total += cost
            assert total * g.t_units <= g.limit.count * g.t_units + (latest - first)


@given(grids(), st.integers(1, 4 * 2**16))
def test_only_going_back_in_time_allows_at_most_one_burst(g: Grid, back_units: int) -> None:
    tat, _ = burst(None, g.start, g.limit, 1)
    allowed = 1
    for k in range(1, 4 * g.limit.count):
        d = decide(tat, g.at(-(k * back_units) // 4), g.limit)
        if d.allowed:
            tat, allowed = d.tat, allowed + 1
    assert allowed <= g.limit.count


@given(grid_histories(backwards=True), st.integers(0, 2**20), st.integers(1, 40))
def test_later_is_never_worse(
    case: tuple[Grid, list[tuple[int, int]]], wait_units: int, cost_seed: int
) -> None:
    """For a fixed state, waiting never turns an allowed request into a refused one, nor
    leaves less room (remaining counted before this request took its share)."""
    g, history = case
    tat: float | None = None
    for _, _, d in run(g, history):
        if d.allowed:
            tat = d.tat
    cost = 1 + cost_seed % g.limit.count
    now = g.at(history[-1][0] if history else 0)
    sooner = decide(tat, now, g.limit, cost)
    later = decide(tat, now + wait_units * GRID, g.limit, cost)
    assert later.allowed or not sooner.allowed

    def room(d: Decision) -> int:
        return d.remaining + (cost if d.allowed else 0)

    assert room(later) >= room(sooner)
