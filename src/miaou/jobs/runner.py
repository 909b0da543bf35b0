"""Runs queued jobs: claims up to ``concurrency`` at a time and hands each to its handler.

A handler is ``async handler(job, report) -> result`` (JSON-encodable). It does its CPU work
through :class:`miaou.jobs.processes.ProcessPool`, never on the loop, and calls
``await report(fraction)`` as it goes. ``report`` records progress at most every
``progress_interval_s`` (and at 1.0), and a keeper task renews the lease every third of it
even when the handler reports nothing, so a slow step is not mistaken for a dead worker.
When the claim is lost (the lease expired and another worker took the job, or the job was
cancelled), ``report`` raises :class:`LeaseLost` and the keeper cancels the handler: its
child process is killed and nothing it returns is stored.

Outcomes: a return value -> succeeded. An error that the same input meets again
(``InvalidInput``, ``NotFound``, ... see :data:`miaou.jobs.rules.PERMANENT`) -> failed at
once, its code and message recorded. Anything else -> retried with backoff until
``max_attempts``. A failing job, handler or claim is logged and never stops the loop.

``stop()`` cancels the running handlers and releases their jobs to the queue at once (the
attempt is not counted), rather than leaving them for the lease to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from miaou.errors import MiaouError
from miaou.jobs import rules
from miaou.jobs.queue import Job, JobQueue

Report = Callable[[float], Awaitable[None]]
Handler = Callable[[Job, Report], Awaitable[Any]]

log = structlog.get_logger("miaou.jobs")
RENEW_RETRY_S = 1.0  # after a failed lease renewal (database unavailable)


class LeaseLost(Exception):
    """The job is no longer this worker's: stop working on it."""


def default_owner() -> str:
    """A worker name unique to this runner: host, process, and a random tag."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{secrets.token_hex(4)}"


class _Lease:
    """One claimed job's progress and renewals, shared by its handler and keeper."""

    def __init__(self, runner: JobRunner, job: Job) -> None:
        self.runner = runner
        self.job = job
        self.progress = 0.0
        self.last_write = -float("inf")  # the first report is written at once
        self.lost = False

    async def report(self, fraction: float) -> None:
        if self.lost:
            raise LeaseLost(f"job {self.job.id} is no longer ours")
        self.progress = rules.clamp_progress(fraction)
        now = self.runner.clock()
        if self.progress < 1.0 and now - self.last_write < self.runner.progress_interval_s:
            return
        await self.renew()
        if self.lost:
            raise LeaseLost(f"job {self.job.id} is no longer ours")

    async def renew(self) -> None:
        """Write the lease and progress; a failed write is left to the next renewal."""
        self.last_write = self.runner.clock()
        try:
            held = await self.runner.queue.heartbeat(self.job, self.progress)
        except Exception as exc:
            log.warning("job_renew_failed", job_id=self.job.id, error=rules.describe(exc))
            self.last_write -= self.runner.renew_interval_s - RENEW_RETRY_S
            return
        if not held:
            self.lost = True

    async def keep(self, handler_task: asyncio.Task[Any]) -> None:
        """Renew every third of the lease; cancel the handler once the lease is lost."""
        while not self.lost:
            due = self.last_write + self.runner.renew_interval_s - self.runner.clock()
            if due > 0:
                await asyncio.sleep(due)
                continue
            await self.renew()
        handler_task.cancel()


class JobRunner:
    """Claims jobs of the ``handlers``' kinds for ``owner`` and runs them, ``concurrency``
    at a time; idle, it looks again every ``poll_s`` or when woken. ``clock`` (monotonic
    seconds) times the progress throttle and the lease renewals."""

    def __init__(
        self,
        queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        concurrency: int = 1,
        lease_ms: int = 60_000,
        poll_s: float = 1.0,
        progress_interval_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if concurrency < 1 or lease_ms < 30 or poll_s <= 0:
            raise ValueError("concurrency >= 1, lease_ms >= 30 and poll_s > 0, please")
        self.queue = queue
        self.handlers = dict(handlers)
        self.owner = owner or default_owner()
        self.concurrency = concurrency
        self.lease_ms = lease_ms
        self.poll_s = poll_s
        self.progress_interval_s = progress_interval_s
        self.renew_interval_s = lease_ms / 3000
        self.clock = clock
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._held: dict[int, Job] = {}  # claimed jobs whose outcome is not written yet
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def running(self) -> int:
        """Jobs being handled now."""
        return len(self._tasks)

    async def start(self) -> None:
        self.queue.add_waker(self.wake)
        self._loop_task = asyncio.create_task(self._claim_forever(), name="miaou-jobs")

    def wake(self) -> None:
        """Look for work now instead of at the next poll (a job was just enqueued)."""
        self._wake.set()

    async def _claim_forever(self) -> None:
        kinds = sorted(self.handlers)
        while not self._stopping:
            self._wake.clear()
            while len(self._tasks) < self.concurrency and not self._stopping:
                try:
                    job = await self.queue.claim(self.owner, kinds, self.lease_ms)
                except Exception as exc:
                    log.warning("job_claim_failed", error=rules.describe(exc))
                    break
                if job is None:
                    break
                if self._stopping:  # claimed while stop() began: it releases the job
                    self._held[job.id] = job
                    break
                self._launch(job)
            if not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _launch(self, job: Job) -> None:
        self._held[job.id] = job
        task = asyncio.create_task(self._run(job), name=f"miaou-job-{job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._stopping:
            self._wake.set()  # a slot is free

    async def _run(self, job: Job) -> None:
        lease = _Lease(self, job)
        this = asyncio.current_task()
        assert this is not None
        keeper = asyncio.create_task(lease.keep(this), name=f"miaou-job-{job.id}-lease")
        bound = log.bind(job_id=job.id, kind=job.kind, attempt=job.attempts)
        try:
            try:
                result = await self.handlers[job.kind](job, lease.report)
            finally:
                keeper.cancel()  # from here on, only stop() may cancel this task
        except asyncio.CancelledError:
            if self._stopping or not lease.lost:
                raise  # stop() releases the job
            this.uncancel()
            bound.info("job_lease_lost")
        except LeaseLost:
            bound.info("job_lease_lost")
        except Exception as exc:
            await self._failed(job, exc, bound)
        else:
            if not await self._write(self.queue.succeed(job, result), bound):
                bound.info("job_lease_lost", outcome="succeeded")
        self._held.pop(job.id, None)

    async def _failed(self, job: Job, exc: Exception, bound: Any) -> None:
        retry = rules.retryable(exc)
        again = retry and job.attempts < job.max_attempts
        # A traceback for the unexpected only; our own errors say what they are.
        details = {} if isinstance(exc, MiaouError) else {"exc_info": exc}
        bound.warning("job_failed", error=type(exc).__name__, retry=again, **details)
        if not await self._write(self.queue.fail(job, rules.describe(exc), retry=retry), bound):
            bound.info("job_lease_lost", outcome="failed")

    @staticmethod
    async def _write(outcome: Awaitable[bool], bound: Any) -> bool:
        """Store an outcome; a database failure is logged (the lease then expires and the
        job runs again elsewhere). True unless the claim was lost."""
        try:
            return await outcome
        except Exception as exc:
            bound.error("job_outcome_not_stored", error=rules.describe(exc))
            return True

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop claiming, cancel the running handlers (waiting up to ``grace_s`` for them
        to unwind: a handler's child process is killed) and put their jobs back in the
        queue."""
        self._stopping = True
        self.queue.remove_waker(self.wake)
        self._wake.set()
        if self._loop_task is not None:
            # Let a claim in flight finish rather than cut it: a job claimed by a cancelled
            # transaction that committed anyway would wait out its lease.
            await asyncio.wait([self._loop_task], timeout=grace_s)
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=grace_s)
        held, self._held = list(self._held.values()), {}
        for job in held:
            try:
                await self.queue.release(job)
            except Exception as exc:
                log.warning("job_release_failed", job_id=job.id, error=rules.describe(exc))
