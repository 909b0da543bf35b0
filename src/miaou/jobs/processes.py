"""CPU work in child processes, never on the event loop: one spawned process per call.

Why a process per call rather than a ``ProcessPoolExecutor``:

- **Killable.** A cancelled job (its task cancelled, its lease lost, the node stopping) must
  stop burning CPU now. An executor cannot stop a running call, and killing one of its
  workers breaks the whole pool for every other call. Here the call's own child is sent
  SIGKILL and reaped; nothing else is touched.
- **Memory goes back.** A long transcode leaves a fragmented heap (decoder buffers, numpy
  arrays) that a long-lived worker keeps; a child that exits returns all of it to the OS.
- **A crash stays local.** A segfault in a codec or an OOM kill fails its own call with
  :class:`ProcessDied` (which the runner retries) instead of a ``BrokenProcessPool``.

The cost is a process start per call (the interpreter and the imports the function needs:
tens to a few hundred ms), small beside the seconds-to-minutes of the work it is for.

Children are *spawned* (a fresh interpreter, given only the pipe it writes to): they share
no event loop, socket, database connection or lock with the node. A child reports progress
and its outcome over that pipe, which the parent reads through the event loop
(``connect_read_pipe``): waiting never blocks the loop. Progress is sent only when it moved
by ``PROGRESS_STEP`` (a few hundred messages per call at most). The function's exception
comes back pickled, with its attributes (an :class:`InvalidInput` keeps its code, message
and field errors), chained to the child's traceback text.

A child dies with its parent (Linux ``PR_SET_PDEATHSIG``), so a node killed with -9 leaves
no orphan transcoding on; the job's lease then expires and another worker takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import pickle
import signal
import struct
import traceback
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

from miaou.errors import MiaouError

T = TypeVar("T")
Progress = Callable[[float], Awaitable[None]]

PROGRESS_STEP = 0.005
EXIT_WAIT_S = 5.0  # for a child that sent its outcome to exit on its own
PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct("!i")
_LONG_HEADER = struct.Struct("!Q")


class ProcessDied(MiaouError):
    """The child process ended without an outcome: killed (OOM, SIGKILL), crashed
    (segfault) or exited. Worth a retry: the next attempt may have the memory it lacked."""

    code = "process_died"
    default_message = "The worker process died before finishing."


class RemoteTraceback(Exception):
    """The child's traceback, as the ``__cause__`` of the exception raised in the parent."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ProcessPool:
    """Runs functions in at most ``size`` child processes at a time."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"a process pool needs at least one process, got {size}")
        self.size = size
        self.running = 0  # children alive now
        self._slots = asyncio.Semaphore(size)
        self._context = multiprocessing.get_context("spawn")

    async def run(self, fn: Callable[..., T], *args: Any, progress: Progress | None = None) -> T:
        """``fn(*args, progress=report)`` in a child process; its result or its exception.

        ``fn`` must be a top-level function and ``args`` picklable (spawn pickles ``fn`` by
        reference). ``report(fraction)`` in the child is relayed to ``progress``. If the
        awaiting task is cancelled, the child is killed before the cancellation goes on.
        """
        async with self._slots:
            reader, writer = self._context.Pipe(duplex=False)
            process = self._context.Process(
                target=_child_main,
                args=(writer, os.getpid(), fn, args),
                name=f"miaou-job-{getattr(fn, '__name__', 'fn')}",
                daemon=True,
            )
            try:
                # Inline: a fork/exec and a small pickle written to a pipe, a few ms.
                process.start()
            except BaseException:
                reader.close()
                raise
            finally:
                writer.close()  # the child's copy is the only one: EOF when it ends
            self.running += 1
            try:
                try:
                    ok, value = await _collect(process, reader, progress)
                except BaseException:  # cancelled, the relay failed, or the child died
                    await _end(process, kill=True)
                    raise
                await _end(process, kill=False)
            finally:
                self.running -= 1
        if ok:
            result: T = value
            return result
        raise value


async def _collect(
    process: BaseProcess, reader: Connection, progress: Progress | None
) -> tuple[bool, Any]:
    """Relay progress until the child's outcome arrives: (True, result) or (False, exc)."""
    loop = asyncio.get_running_loop()
    stream = asyncio.StreamReader()
    pipe = os.fdopen(os.dup(reader.fileno()), "rb", buffering=0)
    reader.close()
    try:
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(stream), pipe
        )
    except BaseException:
        pipe.close()
        raise
    try:
        while True:
            message = await _read_message(stream)
            if message is None:
                raise await _death(process)
            tag, value = message
            if tag == "progress":
                if progress is not None:
                    await progress(value)
            elif tag == "ok":
                return True, value
            else:
                return False, _rebuild(*value)
    finally:
        transport.close()


async def _read_message(stream: asyncio.StreamReader) -> tuple[str, Any] | None:
    """One message in ``Connection.send``'s framing, or None at the end of the pipe."""
    try:
        (size,) = _HEADER.unpack(await stream.readexactly(_HEADER.size))
        if size == -1:
            (size,) = _LONG_HEADER.unpack(await stream.readexactly(_LONG_HEADER.size))
        message: tuple[str, Any] = pickle.loads(await stream.readexactly(size))  # noqa: S301 - our own child
    except asyncio.IncompleteReadError:
        return None
    return message


async def _death(process: BaseProcess) -> ProcessDied:
    """The error for a child whose pipe closed without an outcome."""
    if not await _wait_exit(process, EXIT_WAIT_S):
        process.kill()
        await _wait_exit(process, EXIT_WAIT_S)
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return ProcessDied(f"The worker process was killed by {name}.")
    return ProcessDied(f"The worker process exited with status {code} without a result.")


def _rebuild(blob: bytes | None, summary: str, remote_traceback: str) -> BaseException:
    """The child's exception, chained to its traceback; a plain RuntimeError when it does
    not survive pickling, or when it is a BaseException the event loop must not see
    (SystemExit, KeyboardInterrupt)."""
    exc: BaseException | None = None
    if blob is not None:
        with contextlib.suppress(Exception):
            exc = pickle.loads(blob)  # noqa: S301 - our own child
    if not isinstance(exc, Exception):
        exc = RuntimeError(f"the job process raised {summary}")
    exc.__cause__ = RemoteTraceback(remote_traceback)
    return exc


async def _wait_exit(process: BaseProcess, within_s: float) -> bool:
    """Wait (without blocking the loop) for ``process`` to end, and reap it.

    The sentinel (a pipe only the child holds open) closes when the exiting child releases
    its files, a moment before the kernel lets it be reaped (longer for a large heap being
    unmapped): that last moment is polled for rather than waited for in a blocking call.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    if process.exitcode is None:
        ended = loop.create_future()

        def readable() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(process.sentinel, readable)
        try:
            await asyncio.wait_for(ended, within_s)
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(process.sentinel)
    pause = 0.001
    while True:
        if process.exitcode is not None:  # waitpid(WNOHANG): reaps once it can
            return True
        if loop.time() >= deadline:
            return False
        await asyncio.sleep(pause)
        pause = min(2 * pause, 0.05)


async def _end(process: BaseProcess, *, kill: bool) -> None:
    """Reap the child, killing it first when its outcome is not in (``kill``) or when it
    does not exit on its own. ``Process.kill`` signals only a child not yet reaped, and a
    PID is not reused before its parent reaps it: this can only ever hit our own child."""
    try:
        if kill or not await _wait_exit(process, EXIT_WAIT_S):
            process.kill()
            await _wait_exit(process, EXIT_WAIT_S)
    except BaseException:  # cancelled while waiting for a child that had sent its outcome
        process.kill()
        raise
    if process.exitcode is not None:
        process.close()


# ----------------------------------------------------------------------------- in the child


def _die_with_parent(parent_pid: int) -> None:
    """Linux: SIGKILL this child when the parent dies; exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)


class _Reporter:
    """The ``progress`` callable given to the child function: sends a fraction when it
    moved by ``PROGRESS_STEP`` since the last one sent, and always the first and 1.0."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sent = -1.0

    def __call__(self, fraction: float) -> None:
        fraction = min(1.0, max(0.0, float(fraction)))
        if fraction >= 1.0 or abs(fraction - self._sent) >= PROGRESS_STEP:
            self._sent = fraction
            self._conn.send(("progress", fraction))


def _child_main(
    conn: Connection, parent_pid: int, fn: Callable[..., Any], args: tuple[Any, ...]
) -> None:
    _die_with_parent(parent_pid)
    # A Ctrl-C in the terminal reaches the whole process group: the parent decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        message = pickle.dumps(("ok", fn(*args, progress=_Reporter(conn))))
    except BaseException as exc:  # a result that does not pickle lands here too
        blob: bytes | None
        try:
            blob = pickle.dumps(exc)
            pickle.loads(blob)  # noqa: S301 - checks that the parent can rebuild it
        except Exception:
            blob = None
        summary = f"{type(exc).__name__}: {exc}"
        message = pickle.dumps(("error", (blob, summary, traceback.format_exc())))
    conn.send_bytes(message)
    conn.close()
