"""Start `miaou serve` as a subprocess for a benchmark, and stop it (by its PID) after."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import httpx


async def wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(300):  # 30 s
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("node did not become ready")


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process and its live children (``--workers``) have used so
    far (Linux /proc)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                if int(_stat(int(entry.name))[1]) == pid:
                    pids.append(int(entry.name))
    total = 0
    for one in pids:
        with contextlib.suppress(OSError):
            fields = _stat(one)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def node_process(
    port: int, database_url: str | None, *, workers: int = 1, redis_url: str | None = None
) -> AsyncIterator[tuple[str, str, int]]:
    """Yield (node URL, database URL, node PID); SQLite in a temporary directory unless
    given; ``workers`` > 1 needs PostgreSQL and ``redis_url``."""
    with tempfile.TemporaryDirectory() as data:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIAOU_")}
        env.update(MIAOU_RATELIMIT__ENABLED="false", MIAOU_LOG_LEVEL="warning")
        env["MIAOU_DATABASE_URL"] = database_url or f"sqlite:///{Path(data) / 'miaou.db'}"
        if redis_url:
            env["MIAOU_REDIS_URL"] = redis_url
            env["MIAOU_REDIS_NAMESPACE"] = f"bench-{os.getpid()}-{port}"
        command = [sys.executable, "-m", "miaou.cli", "serve", "--port", str(port)]
        command += ["--data-dir", data, "--workers", str(workers)]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped below
            command,
            env=env, cwd=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            await wait_ready(url)
            yield url, env["MIAOU_DATABASE_URL"], proc.pid
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
