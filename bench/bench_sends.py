"""Sends persisted per second through the REST API, 50 concurrent senders, SQLite and PostgreSQL.

A `miaou serve` subprocess per database (rate limits off). 50 users join one guild; each
sender holds one keep-alive connection and posts messages back to back for a fixed time.
The load generator is a bare asyncio HTTP/1.1 client with pre-encoded requests (httpx
would be the bottleneck: it tops out near 700 requests/s here). Every counted send was
acknowledged with 200, and the run ends by counting the rows the database holds.

Beside the sends, the same client runs ``GET /healthz`` (no database, no auth) for the same
time: the ceiling of this HTTP stack and client on this machine. The node's CPU time per
send and the group commit's mean batch size (from ``/metrics``) say where the time goes.

    python -m bench sends        # SQLite, plus PostgreSQL if MIAOU_BENCH_POSTGRES_URL is set,
                                 # plus PostgreSQL with 2 workers if MIAOU_BENCH_REDIS_URL too
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import httpx
from sqlalchemy import text

from bench.bench_accounts import free_port, pct, run_on_fresh_postgres
from bench.node_process import cpu_seconds, node_process
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


def send_request(channel: str, token: str) -> bytes:
    body = json.dumps({"content": "hello from the bench, a message of ordinary length"}).encode()
    return (
        f"POST /api/v1/channels/{channel}/messages HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    ).encode() + body


HEALTHZ = b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"


async def sender(port: int, request: bytes, deadline: float, latencies: list[float]) -> int:
    """Send ``request`` back to back on one keep-alive connection until ``deadline``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
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
                raise RuntimeError(f"request failed with {status}")
            latencies.append(time.perf_counter() - t0)
            sent += 1
    finally:
        writer.close()
    return sent


async def hammer(port: int, requests: list[bytes]) -> tuple[int, float, list[float]]:
    """(acknowledged, elapsed seconds, latencies): one connection per request for SECONDS."""
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + SECONDS
    counts = await asyncio.gather(*(sender(port, r, deadline, latencies) for r in requests))
    return sum(counts), time.perf_counter() - started, latencies


async def run_one(
    database_url: str | None, workers: int = 1, redis_url: str | None = None
) -> dict[str, float]:
    port = free_port()
    async with node_process(port, database_url, workers=workers, redis_url=redis_url) as (
        url,
        db_url,
        pid,
    ):
        channel, tokens = await setup(url)
        ceiling, ceiling_elapsed, _ = await hammer(port, [HEALTHZ] * SENDERS)
        cpu_before = cpu_seconds(pid)
        batches_before = await batch_counters(url)
        acknowledged, elapsed, latencies = await hammer(
            port, [send_request(channel, t) for t in tokens]
        )
        node_cpu = cpu_seconds(pid) - cpu_before
        batches_after = await batch_counters(url)
        batches = batches_after[0] - batches_before[0]
        items = batches_after[1] - batches_before[1]
        retries = batches_after[2] - batches_before[2]
        stored = await count_messages(db_url)
        behind = await ids_behind_in_commit_order(db_url)
    if stored < acknowledged:
        raise RuntimeError(f"{acknowledged} sends acknowledged but {stored} stored")
    if behind:
        raise RuntimeError(f"{behind} messages committed after a later id of their channel")
    return {
        "sends_per_s": acknowledged / elapsed,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "acknowledged": acknowledged,
        "mean_ms": statistics.fmean(latencies) * 1000,
        "stored": stored,
        "node_cpu_us": node_cpu / acknowledged * 1e6,
        "node_cores": node_cpu / elapsed,
        "batch": items / batches if batches else 0.0,
        "retried_pct": 100 * retries / batches if batches else 0.0,
        "healthz_per_s": ceiling / ceiling_elapsed,
    }


async def batch_counters(url: str) -> tuple[float, float, float]:
    """(batches, sends, batches written again behind another worker's commit) of the
    node's send group commit so far, from /metrics."""
    async with httpx.AsyncClient(base_url=url) as http:
        text_ = (await http.get("/metrics")).text
    values = {}
    for line in text_.splitlines():
        name, _, value = line.partition(" ")
        if name in ("miaou_send_batches_total", "miaou_send_batch_items_total",
                    "miaou_send_batch_retries_total"):  # fmt: skip
            values[name] = float(value)
    return (
        values["miaou_send_batches_total"],
        values["miaou_send_batch_items_total"],
        values.get("miaou_send_batch_retries_total", 0.0),  # (none before 7d097cd)
    )


async def ids_behind_in_commit_order(database_url: str) -> int:
    """Messages whose id is below one committed before them in their channel: the stream
    log's positions are the commit order (docs/chat.md: ids grow in commit order)."""
    db = Database(normalise_database_url(database_url))
    newest: dict[str, int] = {}
    behind = 0
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                text(
                    "SELECT payload FROM stream_events WHERE type = 'MESSAGE_CREATE' "
                    "ORDER BY stream, position"
                )
            )
            for (payload,) in rows:
                message = json.loads(bytes(payload))
                channel, id_ = message["channel_id"], int(message["id"])
                if id_ < newest.get(channel, 0):
                    behind += 1
                newest[channel] = max(newest.get(channel, 0), id_)
    finally:
        await db.close()
    return behind


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
    redis = os.environ.get("MIAOU_BENCH_REDIS_URL")
    if pg:
        rows.append(("postgresql", await run_on_fresh_postgres(pg, run_one)))
    if pg and redis:

        async def two_workers(url: str) -> dict[str, float]:
            return await run_one(url, workers=2, redis_url=redis)

        # The group-commit figures come from /metrics of whichever worker answered.
        rows.append(("pg, 2 workers", await run_on_fresh_postgres(pg, two_workers)))
    print(f"POST /api/v1/channels/{{id}}/messages, {SENDERS} senders, {SECONDS:.0f} s each")
    print(f"{'database':<12}{'sends/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'acked':>8}"
          f"{'cpu us/send':>13}{'node cores':>12}{'batch':>7}{'retried %':>10}"
          f"{'healthz/s':>11}")  # fmt: skip
    for name, r in rows:
        print(f"{name:<12}{r['sends_per_s']:>9.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
              f"{int(r['acknowledged']):>8}{r['node_cpu_us']:>13.0f}{r['node_cores']:>12.2f}"
              f"{r['batch']:>7.1f}{r['retried_pct']:>10.1f}"
              f"{r['healthz_per_s']:>11.0f}")  # fmt: skip
