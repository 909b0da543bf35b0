"""Message search: one query function over both engines, and the guild search use case.

The index lives in the database (migration 0003): FTS5 on SQLite, a generated ``tsvector``
with a GIN index on PostgreSQL, so it follows every insert, edit and tombstone whoever
writes them. :func:`search_messages` hides the difference; :func:`search_guild` decides
which channels the caller may search and shapes the answer like Discord's.

User terms are never query syntax: every whitespace-separated token becomes an FTS5 quoted
phrase (or goes through ``plainto_tsquery``), and all of them must occur. Neither engine
folds exactly like the other (SQLite folds diacritics, PostgreSQL's 'simple' config does
not), but each is consistent between what it indexes and what it searches.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import msgspec
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    cast,
    column,
    exists,
    func,
    literal_column,
    select,
)
from sqlalchemy import table as sql_table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Result, Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat.access import GuildAccess, guild_access
from miaou.chat.message_models import Message
from miaou.chat.message_store import message_views
from miaou.chat.models import THREAD_TYPES, ChannelType
from miaou.chat.permissions import Permission
from miaou.chat.tables import channels, messages, overwrites, thread_members
from miaou.db.engine import Database
from miaou.ids import now_ms

Sort = Literal["relevance", "time"]
HAS_VALUES = frozenset({"attachment", "link"})
LIMIT_MAX = 25
# Counting stops here: each counted match is a row read (44 ms for 10,000 on PostgreSQL
# at 1M messages), and a person pages through the first few hundred at most.
RESULTS_CAP = 5000
OFFSET_MAX = RESULTS_CAP - LIMIT_MAX
# Relevance ranks this many of the newest matches: scoring reads each one, and on a big
# guild a common word has tens of thousands (see docs/benchmarks.md).
RANK_WINDOW = 500
MAX_TOKENS = 32
READ = Permission.VIEW_CHANNEL | Permission.READ_MESSAGE_HISTORY
_NOT_TEXT = re.compile(r"[\x00-\x1f\x7f]")


# -- terms --------------------------------------------------------------------------------
def search_tokens(terms: str | None) -> list[str]:
    """The words of a user's query: control characters and lone surrogates removed (NUL
    would break PostgreSQL's text), tokens without a letter or digit dropped (they index
    nothing), at most ``MAX_TOKENS``."""
    if not terms:
        return []
    text = _NOT_TEXT.sub(" ", terms.encode("utf-8", "ignore").decode("utf-8"))
    return [t for t in text.split() if any(c.isalnum() for c in t)][:MAX_TOKENS]


def fts5_query(tokens: Collection[str]) -> str:
    """An FTS5 expression that is all of ``tokens``, each one a quoted phrase.

    Inside double quotes FTS5 sees no operators (AND, NEAR, ``*``, ``-``, parentheses,
    column filters): the tokenizer splits the quoted text into a phrase, so ``don't`` is
    the phrase "don t". A quote is escaped by doubling it. No tokens: the empty phrase,
    which matches nothing (an empty expression would be a syntax error).
    """
    return " ".join('"' + token.replace('"', '""') + '"' for token in tokens) or '""'


# -- the query ----------------------------------------------------------------------------
_fts = sql_table("messages_fts", column("rowid", BigInteger))


@dataclass
class SearchFilters:
    """What to look for; ``before``/``after`` are exclusive message ids (for a time, use
    :func:`miaou.ids.smallest_id_at`)."""

    terms: str | None = None
    author_id: int | None = None
    mentions: int | None = None
    has: frozenset[str] = frozenset()
    before: int | None = None
    after: int | None = None
    pinned: bool | None = None
    sort: Sort = "time"
    descending: bool = True
    limit: int = LIMIT_MAX
    offset: int = 0
    channel_ids: frozenset[int] | None = None  # None: every readable one


def _mentions(dialect: str, user_id: int) -> ColumnElement[bool]:
    # Mentions are stored as a JSON list of ids; integers today, strings tolerated.
    if dialect == "sqlite":
        each = func.json_each(messages.c.mentions).table_valued("value")
        return exists(
            select(literal_column("1"))
            .select_from(each)
            .where(cast(each.c.value, BigInteger) == user_id)
        )
    as_json = cast(messages.c.mentions, JSONB)
    return as_json.contains([user_id]) | as_json.contains([str(user_id)])


async def search_messages(
    conn: AsyncConnection,
    *,
    guild_id: int,
    channel_ids: Collection[int],
    filters: SearchFilters,
) -> tuple[int, list[Row[Any]]]:
    """(number of matches up to ``RESULTS_CAP``, the requested page of ``messages`` rows)
    among live messages of ``channel_ids``: channels of ``guild_id`` the caller may read.
    By relevance, the matches are the ``RANK_WINDOW`` newest ones, ranked."""
    f = filters
    tokens = search_tokens(f.terms)
    if not channel_ids or (f.terms and f.terms.strip() and not tokens):
        return 0, []
    dialect = conn.dialect.name
    fts5 = bool(tokens) and dialect == "sqlite"
    # FTS5 rowids are message ids: bounds on them let FTS5 skip, and its order is time order.
    key: ColumnElement[Any] = _fts.c.rowid if fts5 else messages.c.id
    where: list[ColumnElement[bool]] = [messages.c.channel_id.in_(sorted(channel_ids))]
    if not fts5:
        # With FTS5 both are implied (the channels are the guild's; a deleted message is
        # indexed as empty text, see migration 0003), and leaving them out lets SQLite check
        # a match against the (channel_id, id) index without reading the row.
        where += [messages.c.guild_id == guild_id, messages.c.deleted_at.is_(None)]
    if f.author_id is not None:
        where.append(messages.c.author_id == f.author_id)
    if f.mentions is not None:
        where.append(_mentions(dialect, f.mentions))
    if "attachment" in f.has:
        where.append(messages.c.has_attachments.is_(True))
    if "link" in f.has:
        where.append(messages.c.has_link.is_(True))
    if f.before is not None:
        where.append(key < f.before)
    if f.after is not None:
        where.append(key > f.after)
    if f.pinned is not None:
        pinned = messages.c.pinned_at
        where.append(pinned.is_not(None) if f.pinned else pinned.is_(None))

    source: Any = messages
    score: ColumnElement[Any] | None = None
    if fts5:
        # The FTS table comes first so that SQLite walks the matches, not the guild, and
        # ordering by its rowid lets FTS5 hand them over newest first and stop at the page.
        source = _fts.join(messages, messages.c.id == _fts.c.rowid)
        where.append(literal_column("messages_fts").match(fts5_query(tokens)))
        score = func.bm25(literal_column("messages_fts"))  # lower is better
    elif tokens:
        vector: ColumnElement[Any] = literal_column("messages.search_vector")
        query = func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(tokens))
        where.append(vector.op("@@")(query))
        # Normalisation 1 divides by log(length), like bm25's length penalty.
        score = -func.ts_rank(vector, query, 1)

    in_time = key.desc() if f.descending else key.asc()
    if f.sort != "relevance" or score is None:
        # Counting stops at RESULTS_CAP: an exact count of a common word in a big guild
        # costs a visit to every match, and no page lies past OFFSET_MAX anyway.
        capped: Select[Any] = select(literal_column("1")).select_from(source).where(*where)
        counted = capped.limit(RESULTS_CAP).subquery("counted")
        page = select(messages).select_from(source).where(*where).order_by(in_time)
        return await _page_and_total(conn, page.limit(f.limit).offset(f.offset), counted, f.offset)
    # Relevance ranks the RANK_WINDOW newest matches (scoring is paid per match), and their
    # one scan also gives the count. The page is cut before joining back to messages:
    # joined first, PostgreSQL hashes every message.
    hits = (
        select(messages.c.id.label("hit_id"), score.label("score"))
        .select_from(source)
        .where(*where)
        .order_by(key.desc())
        .limit(RANK_WINDOW)
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    best = hits.c.score.asc() if f.descending else hits.c.score.desc()
    top = (
        select(hits.c.hit_id, hits.c.score)
        .order_by(best, hits.c.hit_id.desc())
        .limit(f.limit)
        .offset(f.offset)
        .subquery("top")
    )
    ranked = top.c.score.asc() if f.descending else top.c.score.desc()
    page = (
        select(messages)
        .join(top, top.c.hit_id == messages.c.id)
        .order_by(ranked, messages.c.id.desc())
    )
    return await _page_and_total(conn, page, hits, f.offset)


async def _page_and_total(
    conn: AsyncConnection, page: Select[Any], counted: Any, offset: int
) -> tuple[int, list[Row[Any]]]:
    """One round trip: the count rides along the page as a column. Only a page past the
    end (empty, though there may be matches) needs a second query for the count."""
    count = select(func.count()).select_from(counted)
    rows = list((await conn.execute(page.add_columns(count.scalar_subquery()))).all())
    if rows or not offset:
        return (int(rows[0][-1]) if rows else 0), rows
    return int((await conn.execute(count)).scalar_one()), []


# -- the use case -------------------------------------------------------------------------
class SearchResults(msgspec.Struct, kw_only=True):
    """Discord's shape: each hit is a list holding the message."""

    total_results: int
    messages: list[list[Message]]


async def readable_channels(conn: AsyncConnection, access: GuildAccess) -> set[int]:
    """Channels of the guild where the caller has VIEW_CHANNEL and READ_MESSAGE_HISTORY.

    The rules of :func:`miaou.chat.access.channel_access`, for every channel at once in one
    query (two with private threads): a thread follows its parent (which must be readable
    itself), and a private thread also needs membership or MANAGE_THREADS.
    """
    joined_rows: Result[Any] = await conn.execute(
        select(
            channels.c.id, channels.c.type, channels.c.parent_id, overwrites.c.target_id,
            overwrites.c.target_type, overwrites.c.allow, overwrites.c.deny,
        )
        .select_from(channels.outerjoin(overwrites, overwrites.c.channel_id == channels.c.id))
        .where(channels.c.guild_id == access.guild_id)
    )  # fmt: skip
    rows: dict[int, Row[Any]] = {}
    by_channel: dict[int, list[Row[Any]]] = {}
    for row in joined_rows.all():
        rows[row.id] = row
        if row.target_id is not None:  # the row carries one of the channel's overwrites
            by_channel.setdefault(row.id, []).append(row)
    joined: set[int] = set()
    if any(row.type == ChannelType.PRIVATE_THREAD for row in rows.values()):
        joined = set(
            (
                await conn.execute(
                    select(thread_members.c.channel_id)
                    .join(channels, channels.c.id == thread_members.c.channel_id)
                    .where(
                        channels.c.guild_id == access.guild_id,
                        thread_members.c.user_id == access.user_id,
                    )
                )
            ).scalars()
        )
    readable = {
        row.id
        for row in rows.values()
        if row.type not in THREAD_TYPES and READ in access.in_channel(by_channel.get(row.id, []))
    }
    for row in rows.values():
        if row.type not in THREAD_TYPES or row.parent_id not in readable:
            continue
        permissions = access.in_thread(by_channel.get(row.parent_id, []))
        if (
            row.type == ChannelType.PRIVATE_THREAD
            and Permission.MANAGE_THREADS not in permissions
            and row.id not in joined
        ):
            continue
        if READ in permissions:
            readable.add(row.id)
    return readable


async def search_guild(
    db: Database, user_id: int, guild_id: int, filters: SearchFilters, *, now: int | None = None
) -> SearchResults:
    """Search a guild as ``user_id``: 404 ``unknown_guild`` unless a member; channels the
    caller cannot read never contribute, and asking for one is the same as asking for a
    channel with no matches (its existence is not revealed)."""
    async with db.read(offload=True) as conn:
        if not db.is_sqlite:
            # PostgreSQL's default costs a random page read as 4 sequential ones (spinning
            # disks). Then it finds the newest matches of a word in ~0.5 % of messages by
            # walking the whole id index backwards (110 ms at 1M messages) rather than
            # fetching its 5,000 matches (40 ms). 1.1 is the usual value for SSDs and cache.
            # And parallel workers take 50-80 ms to start here: more than the whole search.
            # (One statement: set_config(..., true) is SET LOCAL.)
            await conn.execute(
                select(
                    func.set_config("random_page_cost", "1.1", True),
                    func.set_config("max_parallel_workers_per_gather", "0", True),
                )
            )
        access = await guild_access(conn, guild_id, user_id, now if now is not None else now_ms())
        channel_ids = await readable_channels(conn, access)
        if filters.channel_ids is not None:
            channel_ids &= filters.channel_ids
        total, rows = await search_messages(
            conn, guild_id=guild_id, channel_ids=channel_ids, filters=filters
        )
        views = await message_views(conn, rows, user_id)
    return SearchResults(total_results=total, messages=[[view] for view in views])
