"""Progress of a long step, as a fraction 0..1, reported sparingly.

The callback usually crosses a process boundary and ends in a database row, so it is
called at most about a hundred times (each time the fraction has grown by a percent),
never goes backwards, stays below 1.0 until ``done()``, and ``done()`` reports 1.0.
"""

from __future__ import annotations

from collections.abc import Callable

STEP = 0.01
_BEFORE_DONE = 0.99


class Progress:
    def __init__(self, report: Callable[[float], None], total: float | None) -> None:
        """``total``: the amount ``at()`` counts to (seconds of audio); ``None``: unknown."""
        self._report = report
        self._total = total if total and total > 0 else None
        self._next = STEP

    def at(self, amount: float) -> None:
        if self._total is None:
            return
        fraction = min(amount / self._total, _BEFORE_DONE)
        if fraction >= self._next:
            self._report(round(fraction, 4))
            self._next = fraction + STEP

    def done(self) -> None:
        self._report(1.0)
