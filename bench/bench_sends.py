"""Sends persisted per second through the REST API, 50 concurrent senders, SQLite and PostgreSQL.

A `miaou serve` subprocess per database (rate limits off). 50 users join one guild; each
sender holds one keep-alive connection and posts messages back to back for a fixed time.
The load generator is a bare asyncio HTTP/1.1 client with pre-encoded requests (httpx
would be the bottleneck: it tops out near 700 requests/s here). Every counted send was
acknowledged with 200, and the run ends by counting the rows the database holds.

    python -m bench sends        # SQLite, plus PostgreSQL if MIAOU_BENCH_POSTGRES_URL is set
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import httpx
from sqlalchemy import text

from bench.bench_accounts import free_port, fresh_postgres_database, pct
from bench.node_process import node_process
from miaou.config import normalise_database_url
from miaou.db.engine import Database

SENDERS = 50
SECONDS = float(os.environ.get("MIAOU_BENCH_SECONDS", "10"))
PASSWORD = "correct horse battery"


async def setup(url: str) -> tuple[str, list[str]]:
    """A guild, its #general, and SENDERS members' tokens."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        tokens = []
        for i in range(SENDERS):
            r = await http.post("/api/v1/auth/register",
                                json={"username": f"sender{i}", "password": PASSWORD})  # fmt: skip
            tokens.append(r.json()["token"])
        owner = {"authorization": f"Bearer {tokens[0]}"}
        guild = (await http.post("/api/v1/guilds", json={"name": "bench"}, headers=owner)).json()
        general = next(c["id"] for c in guild["channels"] if c["name"] == "general")
        code = (await http.post(f"/api/v1/channels/{general}/invites", json={"max_uses": 0},
                                headers=owner)).json()["code"]  # fmt: skip
        for token in tokens[1:]:
            joined = await http.post(f"/api/v1/invites/{code}",
                                     headers={"authorization": f"Bearer {token}"})  # fmt: skip
            joined.raise_for_status()
    return general, tokens


async def sender(
    port: int, channel: str, token: str, deadline: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps({"content": "hello from the bench, a message of ordinary length"}).encode()
    request = (
        f"POST /api/v1/channels/{channel}/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body
    sent = 0
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            if status != 200:
                raise RuntimeError(f"send failed with {status}")
            latencies.append(time.perf_counter() - t0)
            sent += 1
    finally:
        writer.close()
    return sent


async def run_one(database_url: str | None) -> dict[str, float]:
    port = free_port()
    async with node_process(port, database_url) as (url, db_url):
        channel, tokens = await setup(url)
        latencies: list[float] = []
        started = time.perf_counter()
        deadline = started + SECONDS
        counts = await asyncio.gather(
            *(sender(port, channel, t, deadline, latencies) for t in tokens)
        )
        elapsed = time.perf_counter() - started
        stored = await count_messages(db_url)
    acknowledged = sum(counts)
    if stored < acknowledged:
        raise RuntimeError(f"{acknowledged} sends acknowledged but {stored} stored")
    return {
        "sends_per_s": acknowledged / elapsed,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "acknowledged": acknowledged,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "stored": stored,
    }


async def count_messages(database_url: str) -> int:
    """Rows in the messages table, read from the database itself (not through the API)."""
    db = Database(normalise_database_url(database_url))
    try:
        async with db.read() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM messages"))).scalar_one())
    finally:
        await db.close()


async def main(argv: list[str]) -> None:
    rows = [("sqlite", await run_one(None))]
    pg = os.environ.get("MIAOU_BENCH_POSTGRES_URL")
    if pg:
        rows.append(("postgresql", await run_one(await fresh_postgres_database(pg))))
    print(f"POST /api/v1/channels/{{id}}/messages, {SENDERS} senders, {SECONDS:.0f} s each")
    print(f"{'database':<12}{'sends/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'acked':>10}")
    for name, r in rows:
        print(f"{name:<12}{r['sends_per_s']:>10.0f}{r['p50_ms']:>10.2f}{r['p99_ms']:>10.2f}"
              f"{int(r['acknowledged']):>10}")  # fmt: skip
