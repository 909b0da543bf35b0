"""``miaou serve --workers 2``: two processes on one port, sharing PostgreSQL and Redis.

A message sent through either process reaches gateway sessions held by both; SIGTERM stops
the parent and its workers with status 0. The command runs as a subprocess in its own
session; only its PID is signalled (its workers die with it, by PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import pytest
from test_cli import MIAOU, clean_env, free_port, wait_healthy

from miaou.sdk import Client, GatewayClient

REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL", "")
PASSWORD = "correct horse battery"
CONNECTIONS = 20

pytestmark = [
    pytest.mark.slow,
    pytest.mark.database_kinds("postgres"),
    pytest.mark.skipif(not REDIS_URL, reason="needs MIAOU_TEST_REDIS_URL (set in CI)"),
]


def test_workers_need_postgres_and_redis(tmp_path: Path) -> None:
    result = subprocess.run(
        [*MIAOU, "serve", "--workers", "2", "--port", "0", "--data-dir", str(tmp_path)],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--workers needs --redis-url" in result.stderr


async def test_two_workers_share_one_port_and_every_event(
    tmp_path: Path, database_url: str
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    args = [*MIAOU, "serve", "--workers", "2", "--port", str(port), "--data-dir", str(tmp_path)]
    args += ["--database-url", database_url, "--redis-url", REDIS_URL]
    env = clean_env(
        MIAOU_REDIS_NAMESPACE=f"test-{secrets.token_hex(6)}",
        MIAOU_RATELIMIT__ENABLED="false",
        MIAOU_LOG_JSON="true",
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before any await
            args, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
            start_new_session=True,
        )  # fmt: skip
    gateways: list[GatewayClient] = []
    try:
        await asyncio.to_thread(wait_healthy, proc, port, log)
        url = f"http://127.0.0.1:{port}"
        async with Client(url) as alice, Client(url) as bob:
            await alice.register("alice", PASSWORD)
            await bob.register("bob", PASSWORD)
            guild = await alice.create_guild("Workers")
            channels = await alice.channels(guild["id"])
            general = next(c for c in channels if c["name"] == "general")
            await bob.join((await alice.create_guild_invite(general["id"]))["code"])

            # Each worker listens on its own SO_REUSEPORT socket: the kernel hashes new
            # connections over them (a worker's number leads its session ids). Two or
            # more of 20 on each: a fair coin fails that once in 25,000 runs.
            per_worker: Counter[str] = Counter()
            for _ in range(CONNECTIONS):
                gw = await bob.gateway()
                gateways.append(gw)
                await gw.connect()
                assert gw.session_id is not None
                per_worker[gw.session_id[:3]] += 1
            assert len(per_worker) == 2 and min(per_worker.values()) >= 2, per_worker

            sent = await alice.send_message(general["id"], "to every worker")
            for gw in gateways:
                event = await gw.wait_for(
                    "MESSAGE_CREATE", lambda e: e.d["id"] == sent.id, timeout=10
                )
                assert event.s is not None
            for gw in gateways:
                await gw.close()
        os.kill(proc.pid, signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0, log.read_text()
        with pytest.raises(httpx.TransportError):  # no worker left on the port
            async with httpx.AsyncClient() as http:
                await http.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    finally:
        for gw in gateways:
            await gw.close()
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
