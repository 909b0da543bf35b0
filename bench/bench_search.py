"""Message search and history pages over one big channel, SQLite beside PostgreSQL.

Seeds MIAOU_BENCH_MESSAGES messages (default 1,000,000) straight into the database in large
batches (the index is maintained by the database as they go in: FTS5 triggers, a generated
tsvector with its GIN index), in one guild channel, written by 200 authors over ~300 days,
with words drawn from a Zipf distribution over a 20,000-word vocabulary (English function
words at the head). Then, in process:

- search: 200 queries through ``search_guild`` (permissions, the query, the count and the
  message views), one or two words drawn by frequency from outside the 50 commonest, sorted
  by time and by relevance;
- history: 1,000 pages ``WHERE channel_id = ? AND id < ? ORDER BY id DESC LIMIT 50`` at
  random positions.

    MIAOU_BENCH_MESSAGES=200000 python -m bench search   # + MIAOU_BENCH_POSTGRES_URL
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from itertools import accumulate
from typing import Any

import asyncpg
from sqlalchemy import bindparam, select, text
from sqlalchemy.engine import make_url

from miaou import ids
from miaou.chat.permissions import Permission
from miaou.chat.search import SearchFilters, search_guild
from miaou.chat.tables import channels, guilds, members, messages, roles
from miaou.db import migrate
from miaou.db.engine import Database
from miaou.db.metadata import users

MESSAGES = int(os.environ.get("MIAOU_BENCH_MESSAGES", "1000000"))
BATCH = 10_000
AUTHORS = 200
QUERIES = 200
PAGES = 1000
VOCABULARY = 20_000
_COMMON = (
    "the a to and i you it is of in that for on my me this we have be so not with just "
    "was but are what do at if like lol no can all get it's up out yes know ok"
)
FUNCTION_WORDS = _COMMON.split()
# A plain member: the searcher goes through the permission computation like anyone.
READER = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY | Permission.SEND_MESSAGES
_SOUNDS = "ka ri to mu sen da lo vi ne pa shi ra ku mo te zo an el ir ou"
SYLLABLES = _SOUNDS.split()


def vocabulary(rng: random.Random) -> tuple[list[str], list[float]]:
    words = list(dict.fromkeys(FUNCTION_WORDS))
    seen = set(words)
    while len(words) < VOCABULARY:
        word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    weights = [1 / (rank + 1) ** 1.07 for rank in range(len(words))]  # Zipf, as in chat logs
    return words, list(accumulate(weights))


def message_text(rng: random.Random, words: list[str], cum: list[float]) -> str:
    length = max(1, min(60, int(rng.lognormvariate(2.2, 0.7))))
    return " ".join(rng.choices(words, cum_weights=cum, k=length))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def seed(
    db: Database, rng: random.Random, words: list[str], cum: list[float]
) -> tuple[int, int, int, list[int]]:
    now = int(time.time() * 1000)
    start = max(ids.MIAOU_EPOCH_MS + 1, now - 300 * 86_400_000)
    author_ids = [ids.new_id() for _ in range(AUTHORS)]
    guild_id, channel_id = ids.new_id(), ids.new_id()
    async with db.write() as conn:
        await conn.execute(
            users.insert(),
            [
                {"id": a, "username": f"u{n}", "username_key": f"u{n}", "bio": "",
                 "password_hash": "x", "created_at": now, "updated_at": now}
                for n, a in enumerate(author_ids)
            ],
        )  # fmt: skip
        await conn.execute(
            guilds.insert().values(
                id=guild_id, name="bench", owner_id=author_ids[0], created_at=now, updated_at=now
            )
        )
        await conn.execute(
            roles.insert().values(
                id=guild_id, guild_id=guild_id, name="@everyone", permissions=int(READER),
                created_at=now,
            )
        )  # fmt: skip
        await conn.execute(
            members.insert(), [{"guild_id": guild_id, "user_id": a, "joined_at": now}
                               for a in author_ids]
        )  # fmt: skip
        await conn.execute(
            channels.insert().values(
                id=channel_id, guild_id=guild_id, type=0, name="general", created_at=now
            )
        )
    span = now - start
    message_ids: list[int] = []
    for first in range(0, MESSAGES, BATCH):
        rows = []
        for i in range(first, min(first + BATCH, MESSAGES)):
            at = start + (i * span) // MESSAGES
            message_id = ((at - ids.MIAOU_EPOCH_MS) << ids.TIME_SHIFT) | (i & ids.MAX_SEQUENCE)
            message_ids.append(message_id)
            rows.append(
                {"id": message_id, "channel_id": channel_id, "guild_id": guild_id,
                 "author_id": rng.choice(author_ids), "content": message_text(rng, words, cum),
                 "mentions": [], "mention_roles": [], "mention_channels": [],
                 "has_link": rng.random() < 0.03}
            )  # fmt: skip
        async with db.write() as conn:
            await conn.execute(messages.insert(), rows)
    return guild_id, channel_id, author_ids[1], message_ids


def queries(rng: random.Random, words: list[str], cum: list[float]) -> list[str]:
    rare, rare_cum = words[50:], [c - cum[49] for c in cum[50:]]
    return [
        " ".join(rng.choices(rare, cum_weights=rare_cum, k=1 if rng.random() < 0.6 else 2))
        for _ in range(QUERIES)
    ]


async def measure(db: Database) -> dict[str, Any]:
    rng = random.Random(1)
    words, cum = vocabulary(random.Random(0))
    t0 = time.perf_counter()
    guild_id, channel_id, searcher, message_ids = await seed(db, rng, words, cum)
    seeded = time.perf_counter() - t0
    await analyze(db)
    result: dict[str, Any] = {"seed_s": seeded}
    terms = queries(random.Random(2), words, cum)
    for sort in ("time", "relevance"):
        latencies, totals = [], []
        for query in terms:
            t0 = time.perf_counter()
            filters = SearchFilters(terms=query, sort=sort)
            found = await search_guild(db, searcher, guild_id, filters)
            latencies.append(time.perf_counter() - t0)
            totals.append(found.total_results)
        result[sort] = (pct(latencies, 0.5), pct(latencies, 0.99), statistics.median(totals))
    page = (
        select(messages)
        .where(messages.c.channel_id == channel_id, messages.c.id < bindparam("before"))
        .order_by(messages.c.id.desc())
        .limit(50)
    )
    latencies = []
    for _ in range(PAGES):
        before = rng.choice(message_ids)
        t0 = time.perf_counter()
        async with db.read() as conn:
            (await conn.execute(page, {"before": before})).all()
        latencies.append(time.perf_counter() - t0)
    result["history"] = (pct(latencies, 0.5), pct(latencies, 0.99))
    return result


async def analyze(db: Database) -> None:
    """Statistics as a live database would have them (autovacuum / a periodic ANALYZE)."""
    if db.is_sqlite:
        async with db.write() as conn:
            await conn.execute(text("ANALYZE"))
        return
    dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()


async def run_one(url: str) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate.upgrade(db)
        return await measure(db)
    finally:
        await db.close()


async def fresh_postgres(server_url: str) -> str:
    name = f"miaou_bench_search_{os.getpid()}"
    admin = make_url(server_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return admin.set(drivername="postgresql+asyncpg", database=name).render_as_string(
        hide_password=False
    )


async def drop_postgres(server_url: str, name: str) -> None:
    """A million rows are ~400 MB: not left behind."""
    admin = make_url(server_url).set(drivername="postgresql")
    conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main(argv: list[str]) -> None:
    with tempfile.TemporaryDirectory() as data:
        rows = [("sqlite", await run_one(f"sqlite+aiosqlite:///{data}/bench.db"))]
    pg = os.environ.get("MIAOU_BENCH_POSTGRES_URL")
    if pg:
        url = await fresh_postgres(pg)
        try:
            rows.append(("postgresql", await run_one(url)))
        finally:
            await drop_postgres(pg, make_url(url).database or "")
    print(f"{MESSAGES:,} messages in one channel; {QUERIES} searches, {PAGES} history pages")
    print(f"{'database':<12}{'seed s':>8}{'search p50':>12}{'p99 ms':>8}{'relev. p50':>12}"
          f"{'p99 ms':>8}{'hits med.':>10}{'history p50':>13}{'p99 ms':>8}")  # fmt: skip
    for name, r in rows:
        t50, t99, hits = r["time"]
        r50, r99, _ = r["relevance"]
        h50, h99 = r["history"]
        print(f"{name:<12}{r['seed_s']:>8.0f}{t50:>12.2f}{t99:>8.2f}{r50:>12.2f}{r99:>8.2f}"
              f"{hits:>10.0f}{h50:>13.2f}{h99:>8.2f}")  # fmt: skip
