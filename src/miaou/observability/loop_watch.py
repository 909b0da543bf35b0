"""Noticing when the event loop stops turning, and saying where it was stuck.

One process serves every request and gateway session on one event loop: anything that
blocks it (a synchronous call that waits on a lock or a disk, a long computation, a C
extension holding the GIL) delays every client at once, and from outside it only looks
like a slow answer. So the loop beats (a callback every ``period``), and a watcher thread
checks the beat; when it is late by more than the threshold, the watcher logs
``event_loop_stalled`` once, with the loop thread's stack as it is then (what it is stuck
in), and ``event_loop_resumed`` with how long it lasted when the beat comes back. Both are
counted in the node's metrics (``miaou_event_loop_stalls_total``,
``miaou_event_loop_stall_seconds_total``).

:class:`StallClock` holds the decisions, fed the times (tested without sleeping); the
thread only reads the clock, calls it, and formats the stack.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import structlog

log = structlog.get_logger(__name__)

#: Frames of the stuck stack kept in the log line (the innermost ones).
STACK_FRAMES: Final = 24


@dataclass(frozen=True, slots=True)
class Stalled:
    """The beat is late: the loop has not turned for ``blocked_s``."""

    blocked_s: float


@dataclass(frozen=True, slots=True)
class Resumed:
    """The beat came back after a stall that lasted ``lasted_s``."""

    lasted_s: float


class StallClock:
    """When the loop last beat, and whether a stall is being reported."""

    __slots__ = ("_last", "_stalled", "threshold_s")

    def __init__(self, threshold_s: float, now: float) -> None:
        self.threshold_s = threshold_s
        self._last = now
        self._stalled = False

    def beat(self, now: float) -> Resumed | None:
        """The loop turned at ``now``; the end of a reported stall, if there was one."""
        last, self._last = self._last, now
        if self._stalled:
            self._stalled = False
            return Resumed(now - last)
        return None

    def check(self, now: float) -> Stalled | None:
        """A stall to report: once per stall, when the beat is late by the threshold."""
        late = now - self._last
        if self._stalled or late <= self.threshold_s:
            return None
        self._stalled = True
        return Stalled(late)


def loop_stack(thread_id: int) -> list[str]:
    """The innermost frames of a thread's stack, one ``file:line in function`` each."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return []
    summary = traceback.extract_stack(frame)[-STACK_FRAMES:]
    return [f"{f.filename}:{f.lineno} in {f.name}" for f in summary]


class LoopWatch:
    """Beats on the running loop and watches the beat from a daemon thread."""

    def __init__(
        self,
        threshold_s: float,
        *,
        on_stall: Callable[[float], None] | None = None,
    ) -> None:
        self.threshold_s = threshold_s
        # A fraction of the threshold: a stall is seen at most a period after it passes it.
        self.period_s = threshold_s / 4
        #: Called on the loop with a stall's length when it ends (metrics).
        self.on_stall = on_stall
        self._clock = StallClock(threshold_s, time.monotonic())
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._beats: asyncio.TimerHandle | None = None
        self._loop_thread = 0

    def start(self) -> None:
        """Start beating on the running loop and watching from a new thread."""
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._clock = StallClock(self.threshold_s, time.monotonic())
        self._beats = loop.call_later(self.period_s, self._beat, loop)
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="miaou-loop-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._beats is not None:
            self._beats.cancel()
            self._beats = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _beat(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            resumed = self._clock.beat(time.monotonic())
        if resumed is not None:
            log.warning("event_loop_resumed", stalled_ms=round(resumed.lasted_s * 1000, 1))
            if self.on_stall is not None:
                self.on_stall(resumed.lasted_s)
        self._beats = loop.call_later(self.period_s, self._beat, loop)

    def _watch(self) -> None:
        while not self._stop.wait(self.period_s):
            with self._lock:
                stalled = self._clock.check(time.monotonic())
            if stalled is not None:
                log.warning(
                    "event_loop_stalled",
                    blocked_ms=round(stalled.blocked_s * 1000, 1),
                    loop_stack=loop_stack(self._loop_thread),
                )
