"""64-bit, time-sortable identifiers (snowflake-style).

Layout of an id, most significant bit first::

    0 | 41 bits: milliseconds since MIAOU_EPOCH | 10 bits: worker | 12 bits: sequence

The top bit stays 0 so every id fits a signed BIGINT in PostgreSQL and SQLite. 41 bits of
milliseconds last until 2095. Ids sort by creation time, and the time is recoverable with
:func:`id_time`. In JSON ids travel as strings, because JavaScript numbers lose precision
past 2**53.

Uniqueness across processes rests on distinct worker numbers (``worker_id`` setting); within
a process the generator is monotonic even if the wall clock steps backwards: it keeps the
last timestamp and, when 4,096 ids are used up in one millisecond, borrows the next one
instead of sleeping. Borrowing is bounded by the real id rate, so the drift stays tiny.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

MIAOU_EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TIMESTAMP_BITS = 41
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1
WORKER_SHIFT = SEQUENCE_BITS
TIME_SHIFT = SEQUENCE_BITS + WORKER_BITS
MAX_ID = (1 << 63) - 1


class IdGenerator:
    """Thread-safe generator of snowflake ids for one worker number."""

    def __init__(self, worker_id: int, clock_ms: Callable[[], int] | None = None) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER}, got {worker_id}")
        self.worker_id = worker_id
        self._clock_ms = clock_ms or now_ms
        self._lock = threading.Lock()
        self._last_ms = -1
        self._sequence = 0

    def next_id(self) -> int:
        with self._lock:
            now = int(self._clock_ms()) - MIAOU_EPOCH_MS
            if now > self._last_ms:
                self._last_ms = now
                self._sequence = 0
            elif self._sequence < MAX_SEQUENCE:
                self._sequence += 1
            else:  # this millisecond is used up: borrow the next one
                self._last_ms += 1
                self._sequence = 0
            if not 0 <= self._last_ms < (1 << TIMESTAMP_BITS):
                raise OverflowError("clock outside the id epoch range")
            return (self._last_ms << TIME_SHIFT) | (self.worker_id << WORKER_SHIFT) | self._sequence

    def advance_past(self, floor: int) -> None:
        """Make every later id sort after ``floor`` (another worker's id): if this
        generator is not yet past its millisecond, it moves to the one after, as borrowing
        does (by as far as the two workers' ids are apart, a few milliseconds at most)."""
        after = (floor >> TIME_SHIFT) + 1
        with self._lock:
            if after > self._last_ms:
                self._last_ms = after
                self._sequence = -1  # the next id is this millisecond's first


def now_ms() -> int:
    """Wall-clock Unix milliseconds: the one clock stored times are read from."""
    return time.time_ns() // 1_000_000


def id_time_ms(snowflake: int) -> int:
    """Unix time in milliseconds at which ``snowflake`` was made."""
    return (snowflake >> TIME_SHIFT) + MIAOU_EPOCH_MS


def id_time(snowflake: int) -> datetime:
    return datetime.fromtimestamp(id_time_ms(snowflake) / 1000, tz=UTC)


def id_worker(snowflake: int) -> int:
    return (snowflake >> WORKER_SHIFT) & MAX_WORKER


def smallest_id_at(unix_ms: int) -> int:
    """The lowest id that could be made at ``unix_ms``: a bound for time-range queries."""
    return max(0, unix_ms - MIAOU_EPOCH_MS) << TIME_SHIFT


def parse_id(text: str | int) -> int | None:
    """An id from its JSON/path form, or None if it is not one (callers answer 404/400)."""
    if isinstance(text, int):
        value = text
    elif text.isascii() and text.isdigit() and len(text) <= 19:
        value = int(text)
    else:
        return None
    return value if 0 < value <= MAX_ID else None


_default = IdGenerator(os.getpid() % (MAX_WORKER + 1))


def configure(worker_id: int) -> None:
    """Set the worker number of the process-wide generator (called once at start)."""
    global _default
    new = IdGenerator(worker_id)
    # Carry the clock state over: a fresh generator with the same worker number would repeat
    # the ids already made in this millisecond, or go back in time after a clock step.
    with _default._lock:
        new._last_ms, new._sequence = _default._last_ms, _default._sequence
    _default = new


def new_id() -> int:
    return _default.next_id()


def advance_past(floor: int) -> None:
    """The process-wide generator's :meth:`IdGenerator.advance_past`."""
    _default.advance_past(floor)


INVITE_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def invite_code(length: int) -> str:
    """A random code of letters and digits only.

    URL-safe base64 could start with ``-``, which a command line then reads as an option
    (``miaou invite revoke -Kt...``); 62 symbols give 5.95 bits each.
    """
    return "".join(secrets.choice(INVITE_ALPHABET) for _ in range(length))
