"""``miaou serve --workers N``: N serving processes on one port.

The parent binds the port (without listening: it only holds it), migrates the database
once, then starts N processes (spawned, so each builds its own event loop and node), each
listening on a socket of its own bound to the same port with SO_REUSEPORT: the kernel
hashes new connections evenly over them. (One shared listening socket let whichever worker
woke first take each connection: 1,000 to 5,000 per worker out of 20,000 in a run, and a
process holds at most about 20,000 file descriptors here, so 100,000 WebSockets need
several processes with even shares.) PostgreSQL connections (``database_pool_size``) are
divided among the workers. The workers share PostgreSQL and reach
each other's gateway sessions through the Redis bus, exactly as separate nodes do; each
has its own snowflake worker number (``worker_id`` + its index).

The parent forwards SIGTERM / SIGINT to the workers and waits for their graceful stop. A
worker that dies on its own is restarted, at most ``MAX_RESTARTS`` times a minute; past
that the node stops with status 1 rather than flap.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import socket
import sys
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Any

import msgspec

from miaou.config import Settings
from miaou.errors import ConfigError

MAX_WORKERS = 64
MAX_RESTARTS = 5
STOP_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1


def check(settings: Settings, count: int) -> None:
    if not 1 <= count <= MAX_WORKERS:
        raise ConfigError(f"--workers must be in 1..{MAX_WORKERS}, got {count}")
    if count > 1 and not settings.redis_url:
        raise ConfigError("--workers needs --redis-url: the workers share events through Redis")
    if count > 1 and settings.effective_database_url.startswith("sqlite"):
        raise ConfigError("--workers needs PostgreSQL (--database-url): SQLite has one writer")


def _worker_id(settings: Settings, index: int) -> int:
    base = settings.worker_id if settings.worker_id is not None else os.getpid() % 1024
    return (base + index) % 1024


def worker_pool_size(total: int, count: int) -> int:
    """Each worker's share of the node's PostgreSQL connections (at least 2)."""
    return max(2, -(-total // count))


def _die_with_parent() -> None:
    """Linux: kill this worker when the parent dies without stopping it (killed itself):
    an orphan would keep serving its share of the port beside whatever binds it next.
    SIGKILL, not SIGTERM: nobody is left to wait for a graceful stop, and clients resume
    elsewhere from the stream log."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _run_worker(settings: Settings, port: int, index: int) -> None:
    from miaou.app import Node
    from miaou.observability import configure_logging
    from miaou.server import bind_socket, serve_forever

    _die_with_parent()
    sock = bind_socket(settings.host, port, reuse_port=True)
    configure_logging(settings.log_level, json=settings.log_json)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides; SIGTERM stops us
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve_forever(Node(settings), sock)


def _migrate(settings: Settings) -> None:
    from miaou.db import migrate
    from miaou.db.engine import Database

    async def go() -> None:
        db = Database(settings.effective_database_url)
        try:
            await migrate.upgrade(db)
        finally:
            await db.close()

    if settings.migrate_on_start:
        asyncio.run(go())


class Supervisor:
    def __init__(self, settings: Settings, sock: socket.socket, count: int) -> None:
        self.sock = sock
        self.count = count
        self.context = multiprocessing.get_context("spawn")
        self.base = settings
        self.workers: dict[int, BaseProcess] = {}
        self.stopping = False
        self.restarts: list[float] = []

    def _settings_for(self, index: int) -> Settings:
        # Migrations ran in the parent; a worker only checks the schema is current.
        return msgspec.structs.replace(
            self.base,
            worker_id=_worker_id(self.base, index),
            migrate_on_start=False,
            database_pool_size=worker_pool_size(self.base.database_pool_size, self.count),
            # Background jobs in one worker only: N runners would start N x job_processes
            # children on the same cores.
            jobs_in_serve=self.base.jobs_in_serve and index == 0,
        )

    def _start(self, index: int) -> None:
        process = self.context.Process(
            target=_run_worker,
            args=(self._settings_for(index), self.sock.getsockname()[1], index),
            name=f"miaou-worker-{index}",
            daemon=False,
        )
        process.start()
        self.workers[index] = process

    def _stop(self, *_: Any) -> None:
        self.stopping = True
        for process in self.workers.values():
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        _migrate(self.base)
        for index in range(self.count):
            self._start(index)
        status = 0
        while not self.stopping:
            sentinels: dict[Any, int] = {p.sentinel: i for i, p in self.workers.items()}
            for ready in wait(list(sentinels), timeout=1.0):
                index = sentinels[ready]
                code = self.workers[index].exitcode
                if self.stopping:
                    break
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < 60] + [now]
                if len(self.restarts) > MAX_RESTARTS:
                    print(f"miaou: worker {index} keeps failing; stopping", file=sys.stderr)
                    status = 1
                    self._stop()
                    break
                print(f"miaou: worker {index} exited ({code}); restarting", file=sys.stderr)
                self._start(index)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in self.workers.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        return status


def serve_workers(settings: Settings, sock: socket.socket, count: int) -> int:
    check(settings, count)
    return Supervisor(settings, sock, count).run()
