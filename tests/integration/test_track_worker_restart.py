"""A track's processing survives kill -9 of the worker running it: ``miaou worker``
processes share the node's database and media directory; the first is SIGKILLed
mid-job, and a second one finishes the job once the first one's lease has expired.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from audio_samples import encode
from chat_fixtures import person
from test_cli import MIAOU, clean_env

from miaou.audio.service import subject_of
from miaou.jobs.queue import JobQueue
from miaou.server import RunningNode

LEASE_SECONDS = 10


def start_worker(tmp_path: Path, database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = clean_env(
        MIAOU_DATA_DIR=str(tmp_path / "data"),
        MIAOU_DATABASE_URL=database_url,
        MIAOU_JOB_LEASE_SECONDS=str(LEASE_SECONDS),
        MIAOU_JOB_PROCESSES="1",
        MIAOU_LOG_JSON="true",
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            [*MIAOU, "worker"], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
            stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@pytest.fixture
async def node(start_node) -> RunningNode:
    """The node serving HTTP runs no jobs: only the ``miaou worker`` processes do."""
    return await start_node(ratelimit={"enabled": False}, jobs_in_serve=False)


@pytest.mark.slow
async def test_a_job_killed_mid_way_completes_after_restart(
    node, make_client, database_url, tmp_path
) -> None:
    artist = await person(make_client, "artist")
    source = encode(tmp_path / "long.wav", "wav", 60.0)
    track = await artist.client.upload_track(source, "long.wav")
    queue = JobQueue(node.node.db)
    log = tmp_path / "worker.log"

    first = start_worker(tmp_path, database_url, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            job = await queue.latest_for(subject_of(int(track["id"])))
            assert job is not None
            if job.state == "running" and 0 < job.progress < 0.9:
                break
            assert job.state != "succeeded", "finished before it could be killed"
            assert time.monotonic() < deadline, log.read_text()
            await asyncio.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        stop(first)
    killed_at = job.progress
    assert (await artist.client.track(track["id"]))["state"] == "processing"

    second = start_worker(tmp_path, database_url, log)
    try:
        ready = await artist.client.wait_for_track(track["id"], within=LEASE_SECONDS + 90)
    finally:
        stop(second)
    assert ready["duration_ms"] == pytest.approx(60_000, abs=200)
    job = await queue.latest_for(subject_of(int(track["id"])))
    assert job is not None and job.state == "succeeded" and job.progress == 1.0
    assert job.attempts == 2, f"killed at {killed_at:.0%}, then {job.attempts} attempts"
    hls = await artist.client.fetch_media(ready["media"]["hls"])
    assert hls.text.count("#EXT-X-STREAM-INF") == 4
