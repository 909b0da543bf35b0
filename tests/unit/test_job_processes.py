"""CPU work in child processes (miaou.jobs.processes): results, progress, errors that come
back intact, children killed on cancellation, deaths reported clearly, and the pool bound.

The child functions live at the top of this module: a spawned child imports them by name,
and finds this module through the ``sys.path`` multiprocessing hands it (pytest put this
directory on it).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from miaou.errors import InvalidInput
from miaou.jobs.processes import ProcessDied, ProcessPool, RemoteTraceback

WAIT_S = 20.0  # every wait here is bounded; spawning takes well under a second

# ---------------------------------------------------------------- run in the child processes


def count(n: int, *, progress: Callable[[float], None]) -> dict[str, int]:
    for i in range(1, n + 1):
        progress(i / n)
    return {"n": n, "pid": os.getpid()}


def refuse(*, progress: Callable[[float], None]) -> None:
    raise InvalidInput("Not an audio file.", code="unsupported_audio", errors={"file": ["mp4"]})


def hang(pid_file: str, *, progress: Callable[[float], None]) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    progress(0.5)
    time.sleep(60)


def exit_early(*, progress: Callable[[float], None]) -> None:
    progress(0.5)
    os._exit(3)


def kill_self(*, progress: Callable[[float], None]) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def leave(*, progress: Callable[[float], None]) -> None:
    raise SystemExit(4)


class Stubborn(Exception):
    """Does not survive pickling: its constructor wants two arguments."""

    def __init__(self, a: int, b: int) -> None:
        super().__init__(f"{a}+{b}")


def raise_stubborn(*, progress: Callable[[float], None]) -> None:
    raise Stubborn(1, 2)


def nap(seconds: float, *, progress: Callable[[float], None]) -> tuple[float, float]:
    start = time.time()
    time.sleep(seconds)
    return start, time.time()


# ------------------------------------------------------------------------------------ tests


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_result_and_progress_come_back() -> None:
    pool = ProcessPool(2)
    seen: list[float] = []

    async def progress(fraction: float) -> None:
        seen.append(fraction)

    result = await asyncio.wait_for(pool.run(count, 1000, progress=progress), WAIT_S)
    assert result["n"] == 1000 and result["pid"] != os.getpid()
    assert gone(result["pid"])  # reaped
    assert seen == sorted(seen) and seen[0] == 0.001 and seen[-1] == 1.0
    assert 100 < len(seen) <= 201  # relayed in steps, not all 1,000
    assert pool.running == 0


async def test_invalid_input_arrives_intact() -> None:
    with pytest.raises(InvalidInput) as caught:
        await asyncio.wait_for(ProcessPool(1).run(refuse), WAIT_S)
    exc = caught.value
    assert (exc.code, exc.message, exc.errors) == (
        "unsupported_audio",
        "Not an audio file.",
        {"file": ["mp4"]},
    )
    assert isinstance(exc.__cause__, RemoteTraceback)
    assert "raise InvalidInput" in str(exc.__cause__)


async def test_an_exception_that_does_not_pickle_becomes_a_runtime_error() -> None:
    with pytest.raises(RuntimeError, match=r"Stubborn: 1\+2"):
        await asyncio.wait_for(ProcessPool(1).run(raise_stubborn), WAIT_S)


async def test_system_exit_in_the_child_does_not_reach_the_loop() -> None:
    with pytest.raises(RuntimeError, match="SystemExit: 4"):
        await asyncio.wait_for(ProcessPool(1).run(leave), WAIT_S)


async def test_cancelling_the_caller_kills_the_child(tmp_path: Path) -> None:
    pool = ProcessPool(1)
    pid_file = tmp_path / "pid"
    running = asyncio.Event()

    async def progress(fraction: float) -> None:
        running.set()

    task = asyncio.create_task(pool.run(hang, str(pid_file), progress=progress))
    await asyncio.wait_for(running.wait(), WAIT_S)
    pid = int(pid_file.read_text())
    assert not gone(pid)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT_S)
    assert gone(pid)  # killed and reaped, not a zombie
    assert pool.running == 0


@pytest.mark.parametrize(
    ("fn", "message"),
    [(exit_early, "exited with status 3"), (kill_self, "killed by SIGKILL")],
    ids=["exit", "sigkill"],
)
async def test_a_child_that_dies_gives_a_clear_error(fn: Callable[..., None], message: str) -> None:
    with pytest.raises(ProcessDied, match=message) as caught:
        await asyncio.wait_for(ProcessPool(1).run(fn), WAIT_S)
    assert caught.value.code == "process_died"


async def test_the_pool_bound_holds() -> None:
    pool = ProcessPool(2)
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, pool.running)
            await asyncio.sleep(0.005)

    watcher = asyncio.create_task(watch())
    try:
        spans = await asyncio.wait_for(
            asyncio.gather(*(pool.run(nap, 0.4) for _ in range(4))), WAIT_S
        )
    finally:
        watcher.cancel()
    assert most == 2
    # No instant is inside more than two of the runs.
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
