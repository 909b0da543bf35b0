"""The rows a batch of permission checks reads, fetched one query after another or, on
PostgreSQL, in one round trip.

:func:`miaou.chat.access.channel_accesses` needs, for a set of (channel, user) pairs: the
channels, the users' standing in the channels' guilds (member, guild, profile), those
guilds' roles with the ones each user holds, the channels' overwrites (a thread's come from
its parent), DM recipients and private threads' members. Each read depends on an earlier
one (the guilds come from the channels, ...), so on their own they are four to six round
trips in a row. A round trip costs the node ~60 us of CPU and the transaction the
database's answer time, waited for behind whatever the event loop is doing: a send batch's
four reads took ~1 ms of its ~4.4 (docs/benchmarks.md, "Fewer round trips per send batch").

:func:`read_in_one_trip` asks PostgreSQL for all of them in one statement: the reads as
CTEs, each aggregated to a JSON array of column arrays, decoded here into rows with the
same attributes as the separate queries' rows (every column of these tables is a number, a
string, a boolean or JSON, which JSON carries unchanged). SQLite runs
:func:`read_one_by_one`: its queries run inline, with no round trip to save. Both return
:class:`AccessReads`, from which ``channel_accesses`` computes the same answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import (
    BigInteger,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from miaou.chat.models import THREAD_TYPES, ChannelType
from miaou.chat.tables import (
    channel_recipients,
    channels,
    guilds,
    member_roles,
    members,
    message_nonces,
    overwrites,
    roles,
    thread_members,
)
from miaou.db import direct
from miaou.db.keyed import Keyed
from miaou.db.metadata import users

Pair = tuple[int, int]


@dataclass(slots=True)
class AccessReads:
    """What the checks of some (channel, user) pairs read; rows as the queries return them."""

    channels: Sequence[Any]
    standing: Sequence[Any] = ()
    roles: Sequence[Any] = ()
    overwrites: Sequence[Any] = ()
    #: (channel, user) pairs of DM recipients and of private threads' members, among those
    #: asked about (other pairs may be missing: only the ones the checks need are read).
    recipients: set[Pair] = field(default_factory=set)
    thread_members: set[Pair] = field(default_factory=set)
    #: The nonce claims of the (author, nonce) keys asked for (a batch of sends checks
    #: them before anything else: a retried send is answered with its first message).
    nonces: Sequence[Any] = ()


def _standing(where: Any) -> Select[Any]:
    """A member's guild, membership and public profile in one row (no names collide): a
    send shows the profile as its author, with no query of its own."""
    return (
        select(
            guilds,
            members,
            users.c.username,
            users.c.display_name,
            users.c.bio,
            users.c.created_at.label("user_created_at"),
        )
        .join(members, members.c.guild_id == guilds.c.id)
        .join(users, users.c.id == members.c.user_id)
        .where(where)
    )


def _roles(of_guilds: Any, held_by: Any) -> Select[Any]:
    """Each role of the guilds (``of_guilds``: a condition on ``roles.guild_id``) once per
    user who holds it (``held_by``: on ``member_roles.user_id``), or once with no holder."""
    return (
        select(roles, member_roles.c.user_id.label("held_by"))
        .select_from(roles)
        .outerjoin(member_roles, (member_roles.c.role_id == roles.c.id) & held_by)
        .where(of_guilds)
    )


# The separate queries (SQLite; miaou.db.keyed says why they are built once).
CHANNELS = Keyed(lambda key: select(channels).where(key("ids", channels.c.id)))
STANDING = Keyed(lambda key: _standing(key("pairs", members.c.guild_id, members.c.user_id)))
ROLES = Keyed(
    lambda key: _roles(key("guilds", roles.c.guild_id), key("users", member_roles.c.user_id))
)
OVERWRITES = Keyed(lambda key: select(overwrites).where(key("ids", overwrites.c.channel_id)))
RECIPIENTS = Keyed(
    lambda key: select(channel_recipients.c.channel_id, channel_recipients.c.user_id).where(
        key("pairs", channel_recipients.c.channel_id, channel_recipients.c.user_id)
    )
)
NONCES = Keyed(
    lambda key: select(message_nonces).where(
        key("pairs", message_nonces.c.author_id, message_nonces.c.nonce)
    )
)
THREAD_MEMBERS = Keyed(
    lambda key: select(thread_members.c.channel_id, thread_members.c.user_id).where(
        key("pairs", thread_members.c.channel_id, thread_members.c.user_id)
    )
)


def source_of(channel: Any) -> int:
    """The channel whose overwrites apply: a thread's parent, or the channel itself."""
    return channel.parent_id if channel.type in THREAD_TYPES else channel.id  # type: ignore[no-any-return]


async def read(
    conn: AsyncConnection, pairs: Sequence[Pair], nonce_keys: Sequence[tuple[int, str]] = ()
) -> AccessReads:
    """What checking ``pairs`` (distinct) needs, and the claims of ``nonce_keys``: one
    round trip on PostgreSQL, the separate queries on SQLite."""
    if conn.dialect.name == "postgresql":
        return await read_in_one_trip(conn, pairs, nonce_keys)
    reads = await read_one_by_one(conn, pairs)
    if nonce_keys:
        reads.nonces = (await conn.execute(*NONCES.bind(pairs=set(nonce_keys)))).all()
    return reads


async def read_one_by_one(conn: AsyncConnection, pairs: Sequence[Pair]) -> AccessReads:
    """The reads as separate queries, each only when an earlier one makes it needed."""
    found = (await conn.execute(*CHANNELS.bind(ids={c for c, _ in pairs}))).all()
    reads = AccessReads(found)
    by_id = {row.id: row for row in found}
    pairs = [(c, u) for c, u in pairs if c in by_id]
    dm_pairs = [(c, u) for c, u in pairs if by_id[c].guild_id is None]
    if dm_pairs:
        rows = await conn.execute(*RECIPIENTS.bind(pairs=dm_pairs))
        reads.recipients = {(c, u) for c, u in rows.all()}
    guild_pairs = [(c, u) for c, u in pairs if by_id[c].guild_id is not None]
    if not guild_pairs:
        return reads
    members_of = {(by_id[c].guild_id, u) for c, u in guild_pairs}
    reads.standing = (await conn.execute(*STANDING.bind(pairs=members_of))).all()
    if not reads.standing:
        return reads
    guild_ids = {r.guild_id for r in reads.standing}
    user_ids = {r.user_id for r in reads.standing}
    reads.roles = (await conn.execute(*ROLES.bind(guilds=guild_ids, users=user_ids))).all()
    sources = {source_of(by_id[c]) for c, _ in guild_pairs}
    reads.overwrites = (await conn.execute(*OVERWRITES.bind(ids=sources))).all()
    private = [(c, u) for c, u in guild_pairs if by_id[c].type == ChannelType.PRIVATE_THREAD]
    if private:
        rows = await conn.execute(*THREAD_MEMBERS.bind(pairs=private))
        reads.thread_members = {(c, u) for c, u in rows.all()}
    return reads


def _rows_of_arrays(name: str, **columns: tuple[str, Any]) -> Any:
    """``unnest`` of one bound array per column (column=(parameter, element type)): the
    keys of a batch as a table, one SQL text whatever their number."""
    arrays = [bindparam(param, type_=ARRAY(kind)) for param, kind in columns.values()]
    return func.unnest(*arrays).table_valued(*columns).render_derived(name=name)


def _one_trip() -> tuple[Any, list[tuple[str, Any]]]:
    """The single statement, and (name, row class) of each JSON array it returns."""
    asked = _rows_of_arrays(
        "asked", channel_id=("channel_ids", BigInteger), user_id=("user_ids", BigInteger)
    )
    pairs = select(asked.c.channel_id, asked.c.user_id)
    found = select(channels).where(channels.c.id.in_(select(asked.c.channel_id))).cte("found")
    member_pairs = (
        select(found.c.guild_id, asked.c.user_id)
        .select_from(asked)
        .join(found, found.c.id == asked.c.channel_id)
        .where(found.c.guild_id.is_not(None))
    )
    standing = _standing(tuple_(members.c.guild_id, members.c.user_id).in_(member_pairs)).cte(
        "standing"
    )
    held = _roles(
        roles.c.guild_id.in_(select(standing.c.guild_id)),
        member_roles.c.user_id.in_(select(standing.c.user_id)),
    ).cte("held")
    # The thread types written out: an IN list would be bound anew at each execution.
    is_thread = or_(*(found.c.type == literal_column(str(int(t))) for t in sorted(THREAD_TYPES)))
    sources = select(case((is_thread, found.c.parent_id), else_=found.c.id))
    written = select(overwrites).where(overwrites.c.channel_id.in_(sources)).cte("written")
    recipients = (
        select(channel_recipients.c.channel_id, channel_recipients.c.user_id)
        .where(tuple_(channel_recipients.c.channel_id, channel_recipients.c.user_id).in_(pairs))
        .cte("recipients")
    )
    joined = (
        select(thread_members.c.channel_id, thread_members.c.user_id)
        .where(tuple_(thread_members.c.channel_id, thread_members.c.user_id).in_(pairs))
        .cte("joined")
    )
    keys = _rows_of_arrays(
        "keys", author_id=("nonce_authors", BigInteger), nonce=("nonce_values", String)
    )
    claims = (
        select(message_nonces)
        .where(
            tuple_(message_nonces.c.author_id, message_nonces.c.nonce).in_(
                select(keys.c.author_id, keys.c.nonce)
            )
        )
        .cte("claims")
    )
    parts = [
        ("channels", found), ("standing", standing), ("roles", held),
        ("overwrites", written), ("recipients", recipients), ("thread_members", joined),
        ("nonces", claims),
    ]  # fmt: skip
    # Each row as a JSON array of its columns, in the order of its row class's fields.
    arrays = [
        select(
            func.coalesce(
                cast(func.json_agg(func.json_build_array(*cte.c)), Text), literal_column("'[]'")
            )
        ).scalar_subquery().label(name)
        for name, cte in parts
    ]  # fmt: skip
    shapes = [(name, direct.row_class(tuple(cte.c.keys()))) for name, cte in parts]
    return direct.register(select(*arrays)), shapes


_ONE_TRIP, _SHAPES = _one_trip()
_decode = msgspec.json.Decoder(list[list[Any]])


async def read_in_one_trip(
    conn: AsyncConnection, pairs: Sequence[Pair], nonce_keys: Sequence[tuple[int, str]] = ()
) -> AccessReads:
    """All the reads in one statement (PostgreSQL)."""
    parameters = {
        "channel_ids": [c for c, _ in pairs],
        "user_ids": [u for _, u in pairs],
        "nonce_authors": [a for a, _ in nonce_keys],
        "nonce_values": [n for _, n in nonce_keys],
    }
    answer = (await conn.execute(_ONE_TRIP, parameters)).one()
    rows: dict[str, list[Any]] = {}
    for (name, shape), text in zip(_SHAPES, answer, strict=True):
        rows[name] = [shape._make(values) for values in _decode.decode(text)]
    return AccessReads(
        rows["channels"],
        rows["standing"],
        rows["roles"],
        rows["overwrites"],
        {(r.channel_id, r.user_id) for r in rows["recipients"]},
        {(r.channel_id, r.user_id) for r in rows["thread_members"]},
        rows["nonces"],
    )
