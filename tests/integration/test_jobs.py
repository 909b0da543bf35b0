"""The durable job queue and its runner, on every database kind.

Queue tests move an injected clock instead of sleeping: leases expire and backoffs pass
when the test says so. Runner tests run real handlers on the real clock with short leases
and polls; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from miaou import ids
from miaou.db.engine import Database
from miaou.errors import InvalidInput
from miaou.jobs import rules
from miaou.jobs.processes import ProcessPool
from miaou.jobs.queue import Job, JobQueue
from miaou.jobs.runner import Handler, JobRunner, Report

START_MS = 1_800_000_000_000
SEED = 7
WAIT_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now = START_MS

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(db: Database, clock: Clock) -> JobQueue:
    return JobQueue(db, now_ms=clock, rng=random.Random(SEED))


async def add(queue: JobQueue, subject: str = "track:1", kind: str = "probe", **kw: Any) -> int:
    async with queue.db.write() as conn:
        return await queue.enqueue(conn, kind, subject, {"subject": subject}, **kw)


async def stored(queue: JobQueue, job_id: int) -> Job:
    job = await queue.get(job_id)
    assert job is not None
    return job


# ------------------------------------------------------------------------------------ queue


async def test_a_rolled_back_enqueue_leaves_no_job(queue: JobQueue) -> None:
    job_id = 0
    with pytest.raises(RuntimeError):
        async with queue.db.write() as conn:
            job_id = await queue.enqueue(conn, "probe", "track:1", {"a": 1})
            raise RuntimeError("the track insert failed")
    assert job_id and await queue.get(job_id) is None
    assert await queue.claim("w", ["probe"], 1000) is None


async def test_claims_take_due_jobs_oldest_first_and_only_their_kinds(
    queue: JobQueue, clock: Clock
) -> None:
    late = await add(queue, "track:late", delay_ms=5000)
    first = await add(queue, "track:first")
    second = await add(queue, "track:second", delay_ms=1000)
    await add(queue, "track:other", kind="transcode")
    job = await queue.claim("w", ["probe"], 60_000)
    assert job is not None and job.id == first
    assert (job.state, job.attempts, job.lease_owner, job.payload) == (
        "running",
        1,
        "w",
        {"subject": "track:first"},
    )
    assert job.lease_expires == START_MS + 60_000
    assert await queue.claim("w", ["probe"], 60_000) is None  # the others are not due
    clock.advance(5000)
    claimed = [await queue.claim("w", ["probe"], 60_000) for _ in range(3)]
    assert [j.id if j else None for j in claimed] == [second, late, None]


async def test_concurrent_claimers_never_share_a_job(
    database_kind: str, database_url: str, db: Database
) -> None:
    queue = JobQueue(db)
    expected = {await add(queue, f"track:{n}") for n in range(50)}
    # On PostgreSQL each claimer has an engine of its own, as separate nodes would; on
    # SQLite one process has one database handle (miaou.db.sqlite_inline says why).
    handles = [db] * 4 if database_kind == "sqlite" else [Database(database_url) for _ in range(4)]
    claimed: list[tuple[int, int]] = []

    async def claimer(index: int, handle: Database) -> None:
        mine = JobQueue(handle)
        while len(claimed) < len(expected):
            job = await mine.claim(f"w{index}", ["probe"], 60_000)
            if job is None:
                await asyncio.sleep(0.005)  # the rest are locked by the others right now
            else:
                claimed.append((index, job.id))

    try:
        async with asyncio.timeout(WAIT_S):
            await asyncio.gather(*(claimer(i, h) for i, h in enumerate(handles)))
    finally:
        if database_kind != "sqlite":
            await asyncio.gather(*(h.close() for h in handles))
    ids_claimed = [job_id for _, job_id in claimed]
    assert sorted(ids_claimed) == sorted(expected)  # each exactly once
    for job_id in expected:
        job = await stored(queue, job_id)
        assert (job.state, job.attempts) == ("running", 1)


async def test_an_expired_lease_is_taken_over_and_the_late_worker_cannot_write(
    queue: JobQueue, clock: Clock
) -> None:
    job_id = await add(queue)
    first = await queue.claim("crashed", ["probe"], 1000)
    assert first is not None
    clock.advance(999)
    assert await queue.claim("other", ["probe"], 1000) is None
    clock.advance(2)
    second = await queue.claim("other", ["probe"], 1000)
    assert second is not None and second.id == job_id
    assert (second.attempts, second.lease_owner, second.error) == (2, "other", "worker lost")
    # The first worker was only slow: it comes back too late to write anything.
    assert not await queue.heartbeat(first, 0.9)
    assert not await queue.succeed(first, {"by": "crashed"})
    assert not await queue.fail(first, "late", retry=False)
    assert not await queue.release(first)
    assert await queue.succeed(second, {"by": "other"})
    job = await stored(queue, job_id)
    assert (job.state, job.result, job.error, job.progress) == (
        "succeeded",
        {"by": "other"},
        None,
        1.0,
    )
    assert (job.lease_owner, job.lease_id, job.lease_expires) == (None, None, None)


async def test_a_job_whose_workers_keep_dying_fails_with_worker_lost(
    queue: JobQueue, clock: Clock
) -> None:
    job_id = await add(queue, max_attempts=2)
    for owner in ("a", "b"):
        assert await queue.claim(owner, ["probe"], 1000) is not None
        clock.advance(1001)
    assert await queue.claim("c", ["probe"], 1000) is None
    job = await stored(queue, job_id)
    assert (job.state, job.attempts, job.error) == ("failed", 2, "worker lost")


async def test_heartbeats_renew_the_lease_and_record_progress(
    queue: JobQueue, clock: Clock
) -> None:
    job_id = await add(queue)
    job = await queue.claim("w", ["probe"], 1000)
    assert job is not None
    for step in (0.25, 0.5):
        clock.advance(800)
        assert await queue.heartbeat(job, step)
        assert await queue.claim("thief", ["probe"], 1000) is None
    assert await queue.heartbeat(job, 7.0)  # clamped
    stored_job = await stored(queue, job_id)
    assert (stored_job.progress, stored_job.lease_expires) == (1.0, clock.now + 1000)
    assert await queue.heartbeat(job)  # a renewal alone keeps the progress
    assert (await stored(queue, job_id)).progress == 1.0


async def test_a_retried_failure_waits_for_its_backoff(queue: JobQueue, clock: Clock) -> None:
    job_id = await add(queue, max_attempts=2)
    job = await queue.claim("w", ["probe"], 60_000)
    assert job is not None
    assert await queue.fail(job, "RuntimeError: decoder hiccup", retry=True)
    delay = rules.backoff_ms(1, random.Random(SEED))
    queued = await stored(queue, job_id)
    assert (queued.state, queued.attempts, queued.error) == (
        "queued",
        1,
        "RuntimeError: decoder hiccup",
    )
    assert queued.run_after == START_MS + delay and queued.lease_id is None
    clock.advance(delay - 1)
    assert await queue.claim("w", ["probe"], 60_000) is None
    clock.advance(1)
    again = await queue.claim("w", ["probe"], 60_000)
    assert again is not None and again.attempts == 2
    # The last attempt: a retry is asked for, but none is left.
    assert await queue.fail(again, "RuntimeError: again", retry=True)
    job_after = await stored(queue, job_id)
    assert (job_after.state, job_after.error) == ("failed", "RuntimeError: again")


async def test_a_failure_without_retry_records_a_bounded_error(queue: JobQueue) -> None:
    job_id = await add(queue)
    job = await queue.claim("w", ["probe"], 60_000)
    assert job is not None
    assert await queue.fail(job, "invalid_input: " + "x\x00" * 5000, retry=False)
    failed = await stored(queue, job_id)
    assert failed.state == "failed" and failed.attempts == 1
    assert failed.error is not None and len(failed.error) == rules.MAX_ERROR
    assert failed.error.startswith("invalid_input: x\ufffdx") and "\x00" not in failed.error


async def test_cancel_stops_queued_and_running_jobs_of_a_subject(
    queue: JobQueue, clock: Clock
) -> None:
    running_id = await add(queue, "track:1")
    running = await queue.claim("w", ["probe"], 60_000)
    assert running is not None and running.id == running_id
    queued_id = await add(queue, "track:1", kind="transcode")
    other_id = await add(queue, "track:2")
    with pytest.raises(RuntimeError):  # in the caller's transaction, rolled back with it
        async with queue.db.write() as conn:
            assert await queue.cancel("track:1", conn=conn) == 2
            raise RuntimeError("the track delete failed")
    assert (await stored(queue, queued_id)).state == "queued"
    assert await queue.cancel("track:1") == 2
    assert not await queue.heartbeat(running, 0.5)  # the worker learns it must stop
    assert not await queue.succeed(running, {"late": True})
    for job_id in (running_id, queued_id):
        job = await stored(queue, job_id)
        assert (job.state, job.result, job.lease_id) == ("cancelled", None, None)
    assert (await stored(queue, other_id)).state == "queued"
    assert await queue.cancel("track:1") == 0
    clock.advance(10**9)
    assert await queue.claim("w", ["probe", "transcode"], 1000) is not None  # track:2 only
    assert await queue.claim("w", ["probe", "transcode"], 1000) is None


async def test_release_puts_a_job_back_without_counting_the_attempt(queue: JobQueue) -> None:
    job_id = await add(queue)
    job = await queue.claim("w", ["probe"], 60_000)
    assert job is not None
    assert await queue.release(job)
    released = await stored(queue, job_id)
    assert (released.state, released.attempts, released.lease_owner) == ("queued", 0, None)
    again = await queue.claim("w2", ["probe"], 60_000)
    assert again is not None and again.attempts == 1


async def test_latest_for_a_subject_and_pruning(queue: JobQueue, clock: Clock) -> None:
    assert await queue.latest_for("track:1") is None
    old = await add(queue, "track:1")
    job = await queue.claim("w", ["probe"], 60_000)
    assert job is not None and await queue.succeed(job, None)
    clock.advance(1000)
    new = await add(queue, "track:1", kind="transcode")
    latest = await queue.latest_for("track:1")
    assert latest is not None and latest.id == new
    assert await queue.prune(clock.now) == 1  # the finished one; the queued one stays
    assert await queue.get(old) is None and await queue.get(new) is not None


# ----------------------------------------------------------------------------------- runner


@pytest.fixture
def live_queue(db: Database) -> JobQueue:
    return JobQueue(db)


async def until(queue: JobQueue, job_id: int, *states: str) -> Job:
    async with asyncio.timeout(WAIT_S):
        while True:
            job = await stored(queue, job_id)
            if job.state in states:
                return job
            await asyncio.sleep(0.02)


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    async with asyncio.timeout(WAIT_S):
        while True:
            if await check():
                return
            await asyncio.sleep(0.02)


async def after_first_attempt(queue: JobQueue, job_id: int) -> Job:
    """The job once its first attempt's outcome is stored."""
    async with asyncio.timeout(WAIT_S):
        while True:
            job = await stored(queue, job_id)
            if job.attempts > 0 and job.state != "running":
                return job
            await asyncio.sleep(0.02)


@pytest.fixture
async def runners(db: Database) -> AsyncIterator[list[JobRunner]]:
    """Runners a test starts; stopped at teardown whatever happened."""
    started: list[JobRunner] = []
    yield started
    for runner in started:
        await runner.stop(2.0)


async def start(
    runners: list[JobRunner], queue: JobQueue, handlers: dict[str, Handler], **options: Any
) -> JobRunner:
    runner = JobRunner(queue, handlers, **{"poll_s": 0.05, **options})
    await runner.start()
    runners.append(runner)
    return runner


async def test_a_handler_reports_progress_and_its_result_is_stored(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    halfway = asyncio.Event()
    go_on = asyncio.Event()

    async def probe(job: Job, report: Report) -> dict[str, Any]:
        await report(0.5)
        halfway.set()
        await go_on.wait()
        await report(0.75)  # within the throttle interval: not written on its own
        return {"seconds": 12.5, "subject": job.payload["subject"]}

    await start(runners, live_queue, {"probe": probe})
    job_id = await add(live_queue)
    async with asyncio.timeout(WAIT_S):
        await halfway.wait()
    assert (await stored(live_queue, job_id)).progress == 0.5
    go_on.set()
    job = await until(live_queue, job_id, "succeeded")
    assert (job.progress, job.result, job.attempts) == (
        1.0,
        {"seconds": 12.5, "subject": "track:1"},
        1,
    )


async def test_invalid_input_fails_the_job_at_once(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    async def probe(job: Job, report: Report) -> None:
        raise InvalidInput("Not an audio file.", code="unsupported_audio")

    await start(runners, live_queue, {"probe": probe})
    job = await after_first_attempt(live_queue, await add(live_queue))
    assert (job.state, job.attempts, job.error) == (
        "failed",
        1,
        "unsupported_audio: Not an audio file.",
    )


async def test_an_unexpected_error_is_retried_with_backoff(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    async def probe(job: Job, report: Report) -> None:
        raise RuntimeError("decoder hiccup")

    await start(runners, live_queue, {"probe": probe})
    job = await after_first_attempt(live_queue, await add(live_queue))
    assert (job.state, job.attempts, job.error) == ("queued", 1, "RuntimeError: decoder hiccup")
    assert job.run_after >= job.updated_at + rules.BACKOFF_BASE_MS * 0.75


async def test_stop_releases_running_jobs_to_the_queue(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def transcode(job: Job, report: Report) -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    runner = await start(runners, live_queue, {"transcode": transcode})
    job_id = await add(live_queue, kind="transcode")
    async with asyncio.timeout(WAIT_S):
        await started.wait()
    begun = time.monotonic()
    await runner.stop(5.0)
    assert time.monotonic() - begun < 2.0 and cancelled.is_set()
    job = await stored(live_queue, job_id)
    assert (job.state, job.attempts, job.lease_owner) == ("queued", 0, None)
    assert job.run_after <= ids.now_ms()


async def test_no_more_jobs_run_at_once_than_the_concurrency(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    active = most = 0

    async def probe(job: Job, report: Report) -> None:
        nonlocal active, most
        active += 1
        most = max(most, active)
        await asyncio.sleep(0.05)
        active -= 1

    job_ids = [await add(live_queue, f"track:{n}") for n in range(6)]
    await start(runners, live_queue, {"probe": probe}, concurrency=2)
    for job_id in job_ids:
        await until(live_queue, job_id, "succeeded")
    assert most == 2


async def test_wake_starts_work_without_waiting_for_the_poll(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    done = asyncio.Event()

    async def probe(job: Job, report: Report) -> None:
        done.set()

    await start(runners, live_queue, {"probe": probe}, poll_s=30.0)
    await asyncio.sleep(0.1)  # the runner found nothing and sleeps until its next poll
    await add(live_queue)
    begun = time.monotonic()
    live_queue.wake()
    async with asyncio.timeout(WAIT_S):
        await done.wait()
    assert time.monotonic() - begun < 1.0


async def test_a_cancelled_job_stops_its_handler_and_the_runner_goes_on(
    live_queue: JobQueue, runners: list[JobRunner]
) -> None:
    started = asyncio.Event()
    stopped = asyncio.Event()

    async def transcode(job: Job, report: Report) -> str:
        if job.subject == "track:2":
            return "ok"
        started.set()
        try:
            await asyncio.sleep(60)  # no progress to report: the lease keeper renews
        except asyncio.CancelledError:
            stopped.set()
            raise
        return "too late"

    await start(runners, live_queue, {"transcode": transcode}, lease_ms=300)
    first = await add(live_queue, "track:1", kind="transcode")
    async with asyncio.timeout(WAIT_S):
        await started.wait()
    await asyncio.sleep(0.4)  # past the first lease: renewed, still running
    assert (await stored(live_queue, first)).state == "running"
    assert await live_queue.cancel("track:1") == 1
    async with asyncio.timeout(WAIT_S):
        await stopped.wait()  # the keeper's next renewal found the lease gone
    second = await add(live_queue, "track:2", kind="transcode")
    assert (await until(live_queue, second, "succeeded")).result == "ok"
    assert (await stored(live_queue, first)).state == "cancelled"


def crunch(pid_file: str, *, progress: Callable[[float], None]) -> None:
    """CPU work that never ends, in a child process (imported there from this module)."""
    Path(pid_file).write_text(str(os.getpid()))
    progress(0.3)
    time.sleep(60)


async def test_a_cancelled_job_kills_its_child_process(
    live_queue: JobQueue, runners: list[JobRunner], tmp_path: Path
) -> None:
    pool = ProcessPool(1)

    async def transcode(job: Job, report: Report) -> None:
        await pool.run(crunch, job.payload["pid_file"], progress=report)

    runner = await start(runners, live_queue, {"transcode": transcode}, lease_ms=300)
    pid_file = tmp_path / "pid"
    async with live_queue.db.write() as conn:
        job_id = await live_queue.enqueue(conn, "transcode", "track:1", {"pid_file": str(pid_file)})

    async def relayed() -> bool:  # the child's progress, in the job's row
        return (await stored(live_queue, job_id)).progress == 0.3

    async def handler_done() -> bool:
        return runner.running == 0

    await eventually(relayed)
    pid = int(pid_file.read_text())
    assert await live_queue.cancel("track:1") == 1
    await eventually(handler_done)
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
    assert pool.running == 0
