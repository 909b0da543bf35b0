"""SQLite's WAL checkpoints, done by a background thread instead of by a request.

Why: in WAL mode a commit appends pages to the ``-wal`` file, and by default the commit
that takes the WAL past 1,000 pages also copies them all into the database file (an
automatic checkpoint) before it returns. With ~15 pages per message send, one send in about
65 paid for that copy: an isolated send's answer p99 was 7.9-8.6 ms with it and 4.5-4.6 ms
without (600 sends, 20 ms apart), the rest of the distribution unchanged.

What: the node's connections checkpoint automatically only past ``AUTOCHECKPOINT_PAGES``
(a safety net: a process that writes without a checkpointer, as ``miaou`` commands do,
or a checkpointer that stalled). While the node runs, :class:`WalCheckpointer` runs a
PASSIVE checkpoint every ``every_s`` on a connection of its own, in a worker thread
(``sqlite3`` releases the GIL while SQLite works), whenever something was committed
since the last one. PASSIVE never waits for readers or writers: frames still needed by a
reader's snapshot are copied by a later round.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3

import structlog

log = structlog.get_logger(__name__)

#: The connections' own automatic checkpoint threshold, in pages (4 KiB each): 40 MiB.
AUTOCHECKPOINT_PAGES = 10_000

#: Checkpoint rounds, seconds apart.
EVERY_S = 1.0


class WalCheckpointer:
    def __init__(self, path: str, *, every_s: float = EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        #: Rounds that checkpointed something, for tests and metrics.
        self.rounds = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="miaou-wal-checkpoint"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            seen = -1
            while True:
                await asyncio.sleep(self.every_s)
                # Changes when another connection commits: a cheap look, on the loop.
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version == seen:
                    continue
                seen = version
                work = asyncio.ensure_future(asyncio.to_thread(_checkpoint, conn))
                try:
                    await asyncio.shield(work)
                except asyncio.CancelledError:
                    # The thread still uses the connection: let it finish before closing.
                    with contextlib.suppress(sqlite3.Error):
                        await work
                    raise
                except sqlite3.Error as exc:  # busy or I/O: the next round tries again
                    log.warning("wal_checkpoint_failed", error=str(exc))
                    continue
                self.rounds += 1
        finally:
            conn.close()


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
