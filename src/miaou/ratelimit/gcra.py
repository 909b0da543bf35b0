"""The Generic Cell Rate Algorithm, as a pure function.

No I/O and no clock reads: the caller passes ``now`` (float seconds, any epoch) and the
bucket's stored *theoretical arrival time* (TAT), and gets back a :class:`Decision` holding
the TAT to store. Every store (memory, Redis) runs this same arithmetic.

The arithmetic, for a limit of ``count`` requests per ``period`` seconds:

* emission interval ``T = period / count``: each request "costs" ``T`` seconds of budget;
* the TAT is the instant at which the bucket would be full again if nothing else arrived;
  ``backlog = max(tat - now, 0)`` is the budget currently in use (0 = empty bucket);
* a request of ``cost`` fits iff ``backlog + cost*T <= period``, which is the textbook test
  ``now >= tat + cost*T - T - tau`` with tolerance ``tau = T * (count - 1)`` (then
  ``tau + T == period``). From an empty bucket exactly ``count`` requests fit at once;
  afterwards one more fits every ``T`` seconds;
* if it fits, the new TAT is ``now + backlog + cost*T``; if not, nothing changes and the
  caller may retry after ``backlog + cost*T - period`` seconds.

Floats: at Unix-epoch magnitudes a float resolves ~0.24 µs, and each request adds up to half
of that in rounding error to the TAT. The fit test therefore allows a slack of a few ulps per
request a full bucket holds (see :func:`_slack`), so that a burst from empty still yields
exactly ``count`` even with ``now ~ 1.7e9``. The slack is microseconds for any sane limit;
limits whose emission interval approaches ``count * 0.24`` µs (millions of requests per
second per key) are beyond what float seconds can count exactly.
"""

from __future__ import annotations

import math

import msgspec

__all__ = ["Decision", "Limit", "decide"]


class Limit(msgspec.Struct, frozen=True):
    """At most ``count`` requests per ``period`` seconds; a burst of ``count`` is allowed."""

    count: int
    period: float

    def __post_init__(self) -> None:
        # ValueError (not a MiaouError): msgspec turns it into a ValidationError when limits
        # are decoded from configuration, and the config layer reports it as a ConfigError.
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ValueError(f"Limit.count must be an integer >= 1, got {self.count!r}")
        if not math.isfinite(self.period) or self.period <= 0:
            raise ValueError(f"Limit.period must be a finite number > 0, got {self.period!r}")

    @property
    def emission_interval(self) -> float:
        """``T``: seconds of budget one request uses; one request is regained every ``T``."""
        return self.period / self.count


class Decision(msgspec.Struct, frozen=True):
    """The outcome of one :func:`decide` call."""

    allowed: bool
    #: TAT to store. Unchanged when refused (stores only write when ``allowed``).
    tat: float
    #: How many more cost-1 requests would be allowed right now (never negative).
    remaining: int
    #: Seconds to wait before the same request would be allowed; 0.0 when allowed.
    retry_after: float
    #: Seconds until the bucket is full (fully replenished) again.
    reset_after: float


def _slack(now: float, limit: Limit) -> float:
    """Rounding allowance for the fit test, in seconds.

    A full bucket is the sum of ``count`` additions of ``T``, each rounded at the magnitude
    of ``now`` (or of ``period`` when ``now`` is small); 4 ulps per request bounds that error
    with margin. It depends only on ``now`` and the limit so that :func:`_room` and the next
    :func:`decide` at the same instant apply the very same test.
    """
    return 4 * limit.count * math.ulp(max(abs(now), limit.period))


def _room(backlog: float, limit: Limit, interval: float, slack: float) -> int:
    """How many cost-1 requests fit on top of ``backlog`` right now."""
    budget = limit.period + slack

    def fits(k: int) -> bool:
        # The very test decide() applies, so "remaining > 0" iff the next call passes.
        # (A quotient like floor((budget - backlog) / T) can land one off it in the last ulp.)
        return backlog + k * interval <= budget

    if not fits(1):
        return 0
    # Binary search for the largest k in 1..count that fits (fits is monotone in k);
    # at most log2(count) + 1 rounds.
    low, high = 1, limit.count
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def decide(tat: float | None, now: float, limit: Limit, cost: int = 1) -> Decision:
    """Apply one request of weight ``cost`` at time ``now`` to a bucket whose TAT is ``tat``.

    ``tat`` is None for a bucket never seen (or expired and forgotten): same as empty.
    ``cost`` must be in ``1..limit.count`` (a bigger cost could never be allowed).
    A ``now`` earlier than a previous call's (clock stepped back) only makes the bucket look
    fuller, never emptier: the TAT never moves backwards.
    """
    if isinstance(cost, bool) or not isinstance(cost, int) or not 1 <= cost <= limit.count:
        raise ValueError(f"cost must be an integer in 1..{limit.count}, got {cost!r}")
    if not math.isfinite(now):
        raise ValueError(f"now must be finite, got {now!r}")
    if tat is not None and not math.isfinite(tat):
        raise ValueError(f"tat must be finite or None, got {tat!r}")

    interval = limit.emission_interval
    slack = _slack(now, limit)
    # Budget in use, measured from now; small numbers, so the sums below stay precise.
    backlog = 0.0 if tat is None else max(tat - now, 0.0)
    wanted = backlog + cost * interval

    if wanted <= limit.period + slack:
        new_tat = now + wanted
        after = max(new_tat - now, 0.0)  # what the next call will compute as its backlog
        return Decision(
            allowed=True,
            tat=new_tat,
            remaining=_room(after, limit, interval, slack),
            retry_after=0.0,
            reset_after=after,
        )

    # Refused: state untouched. An unknown bucket is never refused (cost <= count), so
    # `tat is None` cannot reach here; `now` keeps the type honest and means "empty".
    return Decision(
        allowed=False,
        tat=tat if tat is not None else now,
        remaining=_room(backlog, limit, interval, slack),
        # Time for the backlog to drain until `cost` more fits: wanted - period > slack > 0.
        retry_after=wanted - limit.period,
        reset_after=backlog,
    )
