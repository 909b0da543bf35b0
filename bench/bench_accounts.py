"""Accounts over HTTP: authenticated reads and logins, SQLite beside PostgreSQL.

Starts `miaou serve` as a subprocess per database (one uvicorn process each, default
argon2id cost, rate limits off), then from this process: N authenticated
``GET /api/v1/users/@me`` at a fixed concurrency, and a series of logins. Reports requests
per second and latency percentiles; the two databases run one after the other in one run.

    python -m bench accounts            # SQLite, plus PostgreSQL if MIAOU_BENCH_POSTGRES_URL
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from typing import Any

import httpx

from bench.node_process import node_process

REQUESTS = int(os.environ.get("MIAOU_BENCH_REQUESTS", "4000"))
CONCURRENCY = 32
LOGINS = 20
PASSWORD = "correct horse battery"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(url: str) -> dict[str, float]:
    async with httpx.AsyncClient(
        base_url=url, timeout=30, limits=httpx.Limits(max_connections=CONCURRENCY)
    ) as http:
        auth = (
            await http.post(
                "/api/v1/auth/register", json={"username": "bench", "password": PASSWORD}
            )
        ).json()
        headers = {"authorization": f"Bearer {auth['token']}"}

        async def load(path: str, with_auth: bool) -> tuple[float, list[float]]:
            latencies: list[float] = []
            remaining = REQUESTS

            async def worker() -> None:
                nonlocal remaining
                while remaining > 0:
                    remaining -= 1
                    t0 = time.perf_counter()
                    response = await http.get(path, headers=headers if with_auth else None)
                    latencies.append(time.perf_counter() - t0)
                    response.raise_for_status()

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            return REQUESTS / (time.perf_counter() - started), latencies

        # /healthz touches no database: the ceiling of this client and the HTTP stack.
        health_rps, _ = await load("/healthz", with_auth=False)
        me_rps, latencies = await load("/api/v1/users/@me", with_auth=True)

        logins: list[float] = []
        for _ in range(LOGINS):
            t0 = time.perf_counter()
            (
                await http.post(
                    "/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}
                )
            ).raise_for_status()
            logins.append(time.perf_counter() - t0)
    return {
        "health_rps": health_rps,
        "me_rps": me_rps,
        "me_p50_ms": pct(latencies, 0.5) * 1000,
        "me_p99_ms": pct(latencies, 0.99) * 1000,
        "login_median_ms": statistics.median(logins) * 1000,
    }


async def run_one(database_url: str | None) -> dict[str, float]:
    port = free_port()
    async with node_process(port, database_url) as (url, _, _pid):
        return await measure(url)


async def fresh_postgres_database(server_url: str) -> str:
    import asyncpg

    name = f"miaou_bench_{os.getpid()}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return server_url.rsplit("/", 1)[0] + f"/{name}"


async def drop_postgres_database(server_url: str, database_url: str) -> None:
    """Drop a database made by :func:`fresh_postgres_database` (benchmarks leave none)."""
    import asyncpg

    name = database_url.rsplit("/", 1)[1]
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def run_on_fresh_postgres(server_url: str, run: Any) -> Any:
    url = await fresh_postgres_database(server_url)
    try:
        return await run(url)
    finally:
        await drop_postgres_database(server_url, url)


async def main(argv: list[str]) -> None:
    rows = [("sqlite", await run_one(None))]
    pg = os.environ.get("MIAOU_BENCH_POSTGRES_URL")
    if pg:
        rows.append(("postgresql", await run_on_fresh_postgres(pg, run_one)))
    print(f"GET /api/v1/users/@me x{REQUESTS}, concurrency {CONCURRENCY}; {LOGINS} logins")
    print(
        f"{'database':<12}{'healthz/s':>10}{'@me/s':>10}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'login ms':>10}"
    )
    for name, r in rows:
        print(
            f"{name:<12}{r['health_rps']:>10.0f}{r['me_rps']:>10.0f}{r['me_p50_ms']:>10.2f}"
            f"{r['me_p99_ms']:>10.2f}{r['login_median_ms']:>10.1f}"
        )
    if len(rows) == 2:
        print(f"postgresql/sqlite req/s ratio: {rows[1][1]['me_rps'] / rows[0][1]['me_rps']:.2f}")
