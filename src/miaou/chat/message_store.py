"""Message queries and views shared by the message and reaction use cases.

- who among some users can view a channel (whose mentions take effect),
- turning parsed mentions into the ones that take effect,
- message rows to wire shapes, with authors, mentioned users and reaction counts loaded in
  one query each per page, not per message.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from types import SimpleNamespace
from typing import Any, NamedTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.accounts.models import User
from miaou.accounts.service import user_view
from miaou.chat.access import ChannelAccess, GuildAccess, channel_overwrites, unknown_channel
from miaou.chat.attachment_rows import attachments_of
from miaou.chat.mentions import ParsedMentions, dedupe
from miaou.chat.message_models import (
    UNSET,
    AllowedMentions,
    Attachment,
    Emoji,
    Message,
    MessageReference,
    Reaction,
)
from miaou.chat.models import THREAD_TYPES, Channel, ChannelType
from miaou.chat.outbox import channel_stream, guild_stream
from miaou.chat.permissions import Permission
from miaou.chat.tables import (
    channel_recipients,
    channels,
    member_roles,
    members,
    messages,
    reactions,
    roles,
    thread_members,
)
from miaou.chat.views import channel_view
from miaou.db.keyed import Keyed
from miaou.db.metadata import users
from miaou.errors import NotFound

_CUSTOM_EMOJI = re.compile(r"([A-Za-z0-9_]{2,32}):([0-9]{1,20})")


def unknown_message() -> NotFound:
    return NotFound("No such message.", code="unknown_message")


def stream_of(channel: Row[Any]) -> str:
    """Guild channels and threads publish on their guild's stream, DMs on their own."""
    return guild_stream(channel.guild_id) if channel.guild_id else channel_stream(channel.id)


async def find_message(
    conn: AsyncConnection, channel_id: int, message_id: int, *, lock: bool = False
) -> Row[Any]:
    """A live (not deleted) message of this channel, or 404 ``unknown_message``.

    ``lock`` for read-modify-write: a row lock on PostgreSQL; SQLite's write transactions
    already hold the database lock from BEGIN IMMEDIATE (and the clause is not rendered).
    """
    query = select(messages).where(
        messages.c.id == message_id,
        messages.c.channel_id == channel_id,
        messages.c.deleted_at.is_(None),
    )
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise unknown_message()
    return row


async def lock_channel(conn: AsyncConnection, channel_id: int) -> None:
    """Serialise writers that check a per-channel count before adding (pins)."""
    query = select(channels.c.id).where(channels.c.id == channel_id).with_for_update()
    if (await conn.execute(query)).first() is None:
        raise unknown_channel()


# -- who can view -----------------------------------------------------------------------
async def viewers(
    conn: AsyncConnection, access: ChannelAccess, user_ids: Collection[int], now_ms: int
) -> set[int]:
    """Those of ``user_ids`` who can view the channel of ``access``.

    The same rules as :func:`miaou.chat.access.channel_access`, computed for many users with
    a fixed number of queries: the guild's roles are already loaded in ``access``.
    """
    if not user_ids:
        return set()
    channel = access.channel
    wanted = list(user_ids)
    if access.guild is None:
        query = select(channel_recipients.c.user_id).where(
            channel_recipients.c.channel_id == channel.id,
            channel_recipients.c.user_id.in_(wanted),
        )
        return set((await conn.execute(query)).scalars())
    guild = access.guild
    member_rows = (
        await conn.execute(
            select(members).where(
                members.c.guild_id == guild.guild_id, members.c.user_id.in_(wanted)
            )
        )
    ).all()
    if not member_rows:
        return set()
    role_ids: dict[int, set[int]] = {}
    role_rows = await conn.execute(
        select(member_roles.c.user_id, member_roles.c.role_id).where(
            member_roles.c.guild_id == guild.guild_id, member_roles.c.user_id.in_(wanted)
        )
    )
    for user_id, role_id in role_rows.all():
        role_ids.setdefault(user_id, set()).add(role_id)
    is_thread = channel.type in THREAD_TYPES
    overwrites = await channel_overwrites(conn, channel.parent_id if is_thread else channel.id)
    thread_member_ids: set[int] = set()
    if channel.type == ChannelType.PRIVATE_THREAD:
        query = select(thread_members.c.user_id).where(
            thread_members.c.channel_id == channel.id, thread_members.c.user_id.in_(wanted)
        )
        thread_member_ids = set((await conn.execute(query)).scalars())
    seen: set[int] = set()
    for member in member_rows:
        # GuildAccess is what channel_access itself uses, so both apply the same rules.
        standing = GuildAccess(
            guild.guild,
            member,
            guild.roles,  # the guild's roles, loaded with the caller's access
            frozenset(role_ids.get(member.user_id, ())),
            now_ms,
        )
        permissions = (
            standing.in_thread(overwrites) if is_thread else standing.in_channel(overwrites)
        )
        if (
            channel.type == ChannelType.PRIVATE_THREAD
            and Permission.MANAGE_THREADS not in permissions
            and member.user_id not in thread_member_ids
        ):
            continue
        if Permission.VIEW_CHANNEL in permissions:
            seen.add(member.user_id)
    return seen


# -- mentions -----------------------------------------------------------------------------
class Mentions(NamedTuple):
    """The mentions that take effect, as stored on the message."""

    users: list[int]
    roles: list[int]
    channels: list[int]
    everyone: bool


def _allows(allowed: AllowedMentions | None, kind: str, listed: Sequence[str]) -> set[int] | None:
    """None: every id of this kind may take effect; else only those in the set."""
    if allowed is None or kind in allowed.parse:
        return None
    return {value for raw in listed if (value := ids.parse_id(raw)) is not None}


async def resolve_mentions(
    conn: AsyncConnection,
    access: ChannelAccess,
    parsed: ParsedMentions,
    allowed: AllowedMentions | None,
    now_ms: int,
    *,
    replied_author: int | None = None,
) -> Mentions:
    """Parsed mentions -> the ones that take effect, by permissions and ``allowed``.

    @everyone/@here need MENTION_EVERYONE; a role needs to be mentionable or the author to
    hold MENTION_EVERYONE; a user needs to be able to view the channel (mentioning someone
    who cannot read it would notify them of nothing they can open).
    """
    may_ping_all = Permission.MENTION_EVERYONE in access.permissions
    user_filter = _allows(allowed, "users", allowed.users if allowed else ())
    candidates = [u for u in parsed.users if user_filter is None or u in user_filter]
    if replied_author is not None:
        candidates.append(replied_author)
    candidates = dedupe(candidates)
    can_view = await viewers(conn, access, candidates, now_ms)
    user_ids = [u for u in candidates if u in can_view]

    role_ids: list[int] = []
    channel_ids: list[int] = []
    guild_id = access.channel.guild_id
    if guild_id is not None:
        role_filter = _allows(allowed, "roles", allowed.roles if allowed else ())
        wanted = [
            r
            for r in parsed.roles
            # The @everyone role (id == guild id) is only reachable through "@everyone".
            if r != guild_id and (role_filter is None or r in role_filter)
        ]
        if wanted:
            rows = await conn.execute(
                select(roles.c.id, roles.c.mentionable).where(
                    roles.c.guild_id == guild_id, roles.c.id.in_(wanted)
                )
            )
            ok = {r.id for r in rows.all() if r.mentionable or may_ping_all}
            role_ids = [r for r in wanted if r in ok]
        if parsed.channels:
            rows = await conn.execute(
                select(channels.c.id).where(
                    channels.c.guild_id == guild_id, channels.c.id.in_(list(parsed.channels))
                )
            )
            known = set(rows.scalars())
            channel_ids = [c for c in parsed.channels if c in known]
    everyone_allowed = allowed is None or "everyone" in allowed.parse
    everyone = (parsed.everyone or parsed.here) and everyone_allowed and may_ping_all
    return Mentions(user_ids, role_ids, channel_ids, everyone)


# -- views --------------------------------------------------------------------------------
def emoji_view(key: str) -> Emoji:
    custom = _CUSTOM_EMOJI.fullmatch(key)
    if custom:
        return Emoji(id=custom[2], name=custom[1])
    return Emoji(id=None, name=key)


# What user_view shows, of the users of a page of messages (built once: miaou.db.keyed).
_USERS: Keyed[Select[Any]] = Keyed(
    lambda key: select(
        users.c.id, users.c.username, users.c.display_name, users.c.bio, users.c.created_at
    ).where(key("ids", users.c.id))
)


async def users_by_id(conn: AsyncConnection, user_ids: Collection[int]) -> dict[int, User]:
    if not user_ids:
        return {}
    rows = await conn.execute(*_USERS.bind(ids=user_ids))
    return {row.id: user_view(row) for row in rows.all()}


async def reaction_summaries(
    conn: AsyncConnection, message_ids: Sequence[int], viewer_id: int
) -> dict[int, list[Reaction]]:
    """Per message: each emoji with its count and whether ``viewer_id`` is among them, in
    the order the emoji first appeared."""
    if not message_ids:
        return {}
    first = func.min(reactions.c.created_at)
    query = (
        select(
            reactions.c.message_id,
            reactions.c.emoji,
            func.count().label("n"),
            func.max(case((reactions.c.user_id == viewer_id, 1), else_=0)).label("me"),
        )
        .where(reactions.c.message_id.in_(list(message_ids)))
        .group_by(reactions.c.message_id, reactions.c.emoji)
        .order_by(reactions.c.message_id, first, reactions.c.emoji)
    )
    summaries: dict[int, list[Reaction]] = {}
    for row in (await conn.execute(query)).all():
        summaries.setdefault(row.message_id, []).append(
            Reaction(emoji=emoji_view(row.emoji), count=row.n, me=bool(row.me))
        )
    return summaries


def message_view(
    row: Row[Any] | SimpleNamespace,
    people: Mapping[int, User],
    reaction_list: list[Reaction] | Any = UNSET,
    nonce: str | int | None = None,
    attachment_list: list[Attachment] | None = None,
    referenced: Mapping[int, Message] | None = None,
    threads: Mapping[int, Channel] | None = None,
) -> Message:
    """``referenced``: the live messages replies name (:func:`referenced_views`); without
    it the view carries no ``referenced_message``. ``threads``: the threads started from
    messages (:func:`started_threads`), by id."""
    guild_id = str(row.guild_id) if row.guild_id is not None else None
    reference = None
    referenced_message: Message | Any | None = UNSET
    if row.reference_id is not None:
        reference = MessageReference(
            message_id=str(row.reference_id), channel_id=str(row.channel_id), guild_id=guild_id
        )
        if referenced is not None:
            referenced_message = referenced.get(row.reference_id)
    return Message(
        id=str(row.id),
        channel_id=str(row.channel_id),
        guild_id=guild_id,
        author=people[row.author_id],
        content=row.content,
        timestamp=ids.id_time_ms(row.id),
        edited_timestamp=row.edited_at,
        mentions=[people[u] for u in row.mentions if u in people],
        mention_roles=[str(r) for r in row.mention_roles],
        mention_everyone=bool(row.mention_everyone),
        pinned=row.pinned_at is not None,
        type=row.type,
        attachments=attachment_list or [],
        message_reference=reference,
        referenced_message=referenced_message,
        nonce=nonce,
        reactions=reaction_list,
        thread=_thread_of(row, threads),
    )


def _thread_of(row: Any, threads: Mapping[int, Channel] | None) -> Channel | Any:
    thread_id = getattr(row, "thread_id", None)  # a new message's row has none
    if thread_id is None or threads is None:
        return UNSET
    return threads.get(thread_id, UNSET)


async def started_threads(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> dict[int, Channel]:
    """The threads started from these messages, by id (one query; a deleted one is absent).
    Whoever sees a message sees the thread started from it: only public threads start from
    messages."""
    wanted = {r.thread_id for r in rows if r.thread_id is not None}
    if not wanted:
        return {}
    found = await conn.execute(select(channels).where(channels.c.id.in_(wanted)))
    return {row.id: channel_view(row) for row in found}


async def message_views(
    conn: AsyncConnection,
    rows: Sequence[Row[Any]],
    viewer_id: int | None,
    *,
    nonce: str | int | None = None,
) -> list[Message]:
    """Views of ``rows`` for ``viewer_id``; ``None`` for a broadcast event (no reactions,
    whose ``me`` would be one recipient's)."""
    wanted: set[int] = set()
    for row in rows:
        wanted.add(row.author_id)
        wanted.update(row.mentions)
    people = await users_by_id(conn, wanted)
    files = await attachments_of(conn, [r.id for r in rows if r.has_attachments])
    summaries: dict[int, list[Reaction]] = {}
    if viewer_id is not None:
        summaries = await reaction_summaries(conn, [r.id for r in rows], viewer_id)
    referenced = await referenced_views(conn, {r.reference_id for r in rows})
    threads = await started_threads(conn, rows)
    return [
        message_view(
            row,
            people,
            summaries.get(row.id, []) if viewer_id is not None else UNSET,
            nonce,
            files.get(row.id),
            referenced,
            threads,
        )
        for row in rows
    ]


async def referenced_views(
    conn: AsyncConnection, reference_ids: Collection[int | None]
) -> dict[int, Message]:
    """The live messages that replies name, by id, as views without reactions and
    without their own ``referenced_message`` (a reply's quote goes one level deep). The
    replies and what they name share a channel (sends check it), so whoever sees the
    reply sees the quote."""
    wanted = [i for i in reference_ids if i is not None]
    if not wanted:
        return {}
    statement = select(messages).where(messages.c.id.in_(wanted), messages.c.deleted_at.is_(None))
    rows = (await conn.execute(statement)).all()
    people = await users_by_id(conn, {u for r in rows for u in (r.author_id, *r.mentions)})
    files = await attachments_of(conn, [r.id for r in rows if r.has_attachments])
    return {r.id: message_view(r, people, UNSET, None, files.get(r.id)) for r in rows}
