"""The durable job queue: enqueue in the caller's transaction, claim with a lease, finish.

A job is claimed by a worker for ``lease_ms``; the worker renews the lease with heartbeats
(which also record progress) and finishes the job with :meth:`JobQueue.succeed` or
:meth:`JobQueue.fail`. A worker that dies (kill -9, a lost machine) stops heartbeating: once
its lease expires any worker may claim the job again, which counts as an attempt, and a job
that used up ``max_attempts`` that way fails with "worker lost". Every write that renews or
finishes a job names its claim (``lease_id``) and changes nothing if the claim is no longer
current, so a late worker never overwrites the outcome of the one that took over.

Claiming is one write transaction: on PostgreSQL the candidate row is locked with ``FOR
UPDATE SKIP LOCKED``, so concurrent claimers on any number of nodes each get a different
job without waiting for one another; on SQLite the transaction holds the database's single
write lock (``BEGIN IMMEDIATE``), which makes the claim atomic just the same.

Times are Unix milliseconds from an injected clock, so tests move time instead of sleeping.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection
from typing import Any

import msgspec
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from miaou import ids
from miaou.db.engine import Database
from miaou.jobs import rules
from miaou.jobs.tables import MAX_KIND, MAX_OWNER, MAX_SUBJECT, jobs

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
CANCELLED = "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
WORKER_LOST = "worker lost"
MAX_ATTEMPTS = 100
# Jobs found exhausted (lease expired on their last attempt) that one claim marks failed
# before giving up for this round: keeps the claiming transaction short.
MAX_EXHAUSTED_PER_CLAIM = 20

_encoder = msgspec.json.Encoder()


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A job as stored. ``lease_ms`` is set on a job returned by :meth:`JobQueue.claim`: the
    lease length its heartbeats renew."""

    id: int
    kind: str
    subject: str
    payload: Any
    state: str
    progress: float
    attempts: int
    max_attempts: int
    run_after: int
    lease_owner: str | None
    lease_id: int | None
    error: str | None
    result: Any
    created_at: int
    updated_at: int
    lease_ms: int = 0

    @property
    def lease_expires(self) -> int | None:
        """When a running job's lease ends unless renewed (``run_after`` doubles as it)."""
        return self.run_after if self.state == RUNNING else None


def _job(row: Row[Any], **changes: Any) -> Job:
    values = dict(row._mapping)
    values["payload"] = msgspec.json.decode(values["payload"])
    result = values["result"]
    values["result"] = None if result is None else msgspec.json.decode(result)
    values.update(changes)
    return Job(**values)


# Built once: claims and heartbeats run all the time (miaou.db.keyed says why it pays).
_CANDIDATE = (
    select(jobs)
    .where(
        jobs.c.state.in_((QUEUED, RUNNING)),
        jobs.c.run_after <= bindparam("now"),
        jobs.c.kind.in_(bindparam("kinds", expanding=True)),
    )
    .order_by(jobs.c.run_after, jobs.c.id)
    .limit(1)
    .with_for_update(skip_locked=True)  # rendered on PostgreSQL only
)
_NO_LEASE = {"lease_owner": None, "lease_id": None}


def _held(job: Job) -> ColumnElement[bool]:
    """The job's row, if ``job``'s claim is still the current one."""
    return (jobs.c.id == job.id) & (jobs.c.lease_id == job.lease_id) & (jobs.c.state == RUNNING)


class JobQueue:
    """The jobs table's operations. ``now_ms`` is the clock of every stored time (tests
    inject one); ``rng`` draws the backoff jitter."""

    def __init__(
        self,
        db: Database,
        *,
        now_ms: Callable[[], int] = ids.now_ms,
        rng: random.Random | None = None,
    ) -> None:
        self.db = db
        self._now_ms = now_ms
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrets
        self._wakers: list[Callable[[], None]] = []

    async def enqueue(
        self,
        conn: AsyncConnection,
        kind: str,
        subject: str,
        payload: Any,
        *,
        max_attempts: int = 5,
        delay_ms: int = 0,
    ) -> int:
        """Add a job inside the caller's write transaction (the job commits, or rolls back,
        with the rows it is about); returns its id. Call :meth:`wake` after the commit so
        an in-process runner starts at once instead of at its next poll."""
        if not 0 < len(kind) <= MAX_KIND or len(subject) > MAX_SUBJECT:
            raise ValueError(f"job kind or subject too long: {kind!r}, {subject!r}")
        if not 1 <= max_attempts <= MAX_ATTEMPTS:
            raise ValueError(f"max_attempts must be in 1..{MAX_ATTEMPTS}, got {max_attempts}")
        now = self._now_ms()
        job_id = ids.new_id()
        await conn.execute(
            jobs.insert(),
            {
                "id": job_id,
                "kind": kind,
                "subject": subject,
                "payload": _encoder.encode(payload),
                "state": QUEUED,
                "progress": 0.0,
                "attempts": 0,
                "max_attempts": max_attempts,
                "run_after": now + max(0, delay_ms),
                "lease_owner": None,
                "lease_id": None,
                "error": None,
                "result": None,
                "created_at": now,
                "updated_at": now,
            },
        )
        return job_id

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Call ``waker`` on :meth:`wake` (a runner in this process registers itself)."""
        self._wakers.append(waker)

    def remove_waker(self, waker: Callable[[], None]) -> None:
        if waker in self._wakers:
            self._wakers.remove(waker)

    def wake(self) -> None:
        """New work was committed: runners of this process look for it now."""
        for waker in list(self._wakers):
            waker()

    async def claim(self, owner: str, kinds: Collection[str], lease_ms: int) -> Job | None:
        """Take the due job of one of ``kinds`` that waited longest, for ``lease_ms``:
        a queued job whose ``run_after`` has passed, or a running one whose lease expired
        (its worker is gone). None when there is none."""
        if not kinds:
            return None
        owner = owner[:MAX_OWNER]
        async with self.db.write() as conn:
            for _ in range(MAX_EXHAUSTED_PER_CLAIM):
                now = self._now_ms()
                found = await conn.execute(_CANDIDATE, {"now": now, "kinds": list(kinds)})
                row = found.one_or_none()
                if row is None:
                    return None
                lost = row.state == RUNNING
                values: dict[str, Any] = {"updated_at": now}
                if lost and row.attempts >= row.max_attempts:
                    values.update(_NO_LEASE, state=FAILED, error=WORKER_LOST)
                    await conn.execute(update(jobs).where(jobs.c.id == row.id).values(values))
                    continue
                values.update(
                    state=RUNNING,
                    attempts=row.attempts + 1,
                    progress=0.0,
                    run_after=now + lease_ms,
                    lease_owner=owner,
                    lease_id=ids.new_id(),
                )
                if lost:
                    values["error"] = WORKER_LOST
                await conn.execute(update(jobs).where(jobs.c.id == row.id).values(values))
                return _job(row, **values, lease_ms=lease_ms)
        return None

    async def _update_held(self, job: Job, values: dict[str, Any]) -> bool:
        values["updated_at"] = self._now_ms()
        async with self.db.write() as conn:
            result = await conn.execute(update(jobs).where(_held(job)).values(values))
        return bool(result.rowcount == 1)

    async def heartbeat(self, job: Job, progress: float | None = None) -> bool:
        """Renew ``job``'s lease for another ``job.lease_ms`` and record its progress.
        False when the claim is no longer current (taken over, cancelled): stop working."""
        values: dict[str, Any] = {"run_after": self._now_ms() + job.lease_ms}
        if progress is not None:
            values["progress"] = rules.clamp_progress(progress)
        return await self._update_held(job, values)

    async def succeed(self, job: Job, result: Any = None) -> bool:
        """Record success with ``result`` (JSON-encodable); False if the claim was lost."""
        values = {
            **_NO_LEASE,
            "state": SUCCEEDED,
            "progress": 1.0,
            "result": _encoder.encode(result),
            "error": None,
        }
        return await self._update_held(job, values)

    async def fail(self, job: Job, error: str, *, retry: bool) -> bool:
        """Record a failed attempt. With ``retry`` and attempts left, the job is queued again
        after :func:`rules.backoff_ms`; otherwise it fails for good. The error is kept either
        way (the last one is what users see). False if the claim was lost."""
        values: dict[str, Any] = {**_NO_LEASE, "error": rules.bound_error(error)}
        if retry and job.attempts < job.max_attempts:
            delay = rules.backoff_ms(max(1, job.attempts), self._rng)
            values.update(state=QUEUED, run_after=self._now_ms() + delay)
        else:
            values["state"] = FAILED
        return await self._update_held(job, values)

    async def release(self, job: Job) -> bool:
        """Give a claimed job back, due now, without counting the attempt: the worker is
        stopping, which is not the job's fault. False if the claim was lost."""
        values = {
            **_NO_LEASE,
            "state": QUEUED,
            "run_after": self._now_ms(),
            "attempts": jobs.c.attempts - 1,
        }
        return await self._update_held(job, values)

    async def cancel(self, subject: str, *, conn: AsyncConnection | None = None) -> int:
        """Cancel ``subject``'s queued and running jobs (inside ``conn``'s transaction when
        given); returns how many. A running job's worker finds its lease gone at its next
        heartbeat and stops; its late result is not stored."""
        statement = (
            update(jobs)
            .where(jobs.c.subject == subject, jobs.c.state.in_((QUEUED, RUNNING)))
            .values({**_NO_LEASE, "state": CANCELLED, "updated_at": self._now_ms()})
        )
        if conn is not None:
            return int((await conn.execute(statement)).rowcount or 0)
        async with self.db.write() as own:
            return int((await own.execute(statement)).rowcount or 0)

    async def get(self, job_id: int) -> Job | None:
        async with self.db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one_or_none()
        return None if row is None else _job(row)

    async def latest_for(self, subject: str) -> Job | None:
        """The newest job about ``subject`` (what a track page shows), or None."""
        statement = (
            select(jobs).where(jobs.c.subject == subject).order_by(jobs.c.id.desc()).limit(1)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(statement)).one_or_none()
        return None if row is None else _job(row)

    async def prune(self, before_ms: int) -> int:
        """Delete finished jobs last updated before ``before_ms``; returns how many."""
        statement = delete(jobs).where(jobs.c.state.in_(FINISHED), jobs.c.updated_at < before_ms)
        async with self.db.write() as conn:
            return int((await conn.execute(statement)).rowcount or 0)
