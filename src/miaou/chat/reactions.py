"""Reactions: add, remove (own, or anyone's with MANAGE_MESSAGES), list who reacted.

As in Discord, reading the channel's history is enough to join an emoji already on a
message; putting a new emoji on it takes ADD_REACTIONS. Emoji are unicode (stored as sent)
or custom ``name:id`` (stored as sent). Adding a custom one needs an existing emoji with that
id and name (else 400 ``unknown_emoji``) of a guild the user is a member of; an emoji of
another guild than the channel's also needs USE_EXTERNAL_EMOJIS there (which DMs grant).
Removing and listing do not look the emoji up: reactions outlive a deleted emoji, as in
Discord.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.accounts.models import User
from miaou.bus import Event
from miaou.chat.access import ChannelAccess, channel_access
from miaou.chat.message_models import REACTIONS_LIMIT_MAX, ReactionEvent
from miaou.chat.message_store import emoji_view, find_message, stream_of, users_by_id
from miaou.chat.outbox import Outbox
from miaou.chat.permissions import Permission
from miaou.chat.tables import guild_emojis, members, reactions
from miaou.errors import InvalidInput

MAX_EMOJI_PER_MESSAGE = 20
EMOJI_MAX_CODEPOINTS = 32  # long enough for ZWJ families and tag-sequence flags
_CUSTOM = re.compile(r"[A-Za-z0-9_]{2,32}:[0-9]{1,20}")
_ASCII_LETTER = re.compile(r"[A-Za-z]")
_EMOJI_MARKS = frozenset("\ufe0f\u20e3")


def _bad_emoji() -> InvalidInput:
    return InvalidInput(
        "Unknown emoji: send a unicode emoji or a custom one as name:id.",
        code="unknown_emoji",
        errors={"emoji": ["must be a unicode emoji or name:id"]},
    )


def parse_emoji(raw: str) -> str:
    """The stored key of an emoji from its path form, or 400 ``unknown_emoji``.

    A unicode emoji cannot be checked against a list that changes every year, so the rule
    is by shape: at most 32 code points; no ASCII letters, spaces, control or unassigned
    characters; at least one symbol, emoji presentation selector (U+FE0F) or keycap mark
    (U+20E3); letters and digits only with one of those marks (U+2139 U+FE0F, ``1️⃣``). That refuses
    words and markup while keeping keycaps, flags and ZWJ sequences.
    """
    if _CUSTOM.fullmatch(raw):
        if ids.parse_id(raw.rpartition(":")[2]) is None:
            raise _bad_emoji()
        return raw
    categories = [unicodedata.category(c) for c in raw]
    marked = any(c in _EMOJI_MARKS for c in raw)
    if (
        not 1 <= len(raw) <= EMOJI_MAX_CODEPOINTS
        or _ASCII_LETTER.search(raw)
        or any(c.isspace() for c in raw)
        or any(cat in {"Cc", "Cn", "Co", "Cs"} for cat in categories)
        or not (marked or any(cat in {"So", "Sk"} for cat in categories))
        or (not marked and any(cat[0] in "LN" for cat in categories))
    ):
        raise _bad_emoji()
    return raw


async def check_custom_emoji(
    conn: AsyncConnection, access: ChannelAccess, user_id: int, key: str
) -> None:
    """A custom emoji ``key`` may be used by ``user_id`` here (unicode ones always may)."""
    if not _CUSTOM.fullmatch(key):
        return
    name, _, emoji_id = key.rpartition(":")
    query = select(guild_emojis.c.guild_id, guild_emojis.c.name).where(
        guild_emojis.c.id == int(emoji_id)
    )
    emoji = (await conn.execute(query)).first()
    if emoji is None or emoji.name != name:
        raise _bad_emoji()
    if emoji.guild_id == access.channel.guild_id:
        return
    # Another guild's: only one the user is in (so its emoji are theirs to use) ...
    membership = await conn.execute(
        select(members.c.user_id).where(
            members.c.guild_id == emoji.guild_id, members.c.user_id == user_id
        )
    )
    if membership.first() is None:
        raise _bad_emoji()
    # ... and only where external emoji are allowed.
    access.require(Permission.USE_EXTERNAL_EMOJIS)


def reactions_limit(limit: int) -> int:
    if not 1 <= limit <= REACTIONS_LIMIT_MAX:
        raise InvalidInput(
            "Invalid limit.", errors={"limit": [f"must be between 1 and {REACTIONS_LIMIT_MAX}"]}
        )
    return limit


class ReactionService:
    def __init__(self, outbox: Outbox, clock: Callable[[], int]) -> None:
        self.outbox = outbox
        self.db = outbox.db
        self.clock = clock

    async def add(self, user_id: int, channel_id: int, message_id: int, emoji: str) -> None:
        key = parse_emoji(emoji)
        now = self.clock()
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, user_id, now)
            access.require(Permission.READ_MESSAGE_HISTORY)
            await find_message(conn, channel_id, message_id, lock=True)
            await check_custom_emoji(conn, access, user_id, key)
            present = (
                await conn.execute(
                    select(reactions.c.emoji)
                    .where(reactions.c.message_id == message_id)
                    .group_by(reactions.c.emoji)
                )
            ).scalars()
            emoji_on_message = set(present)
            if key not in emoji_on_message:
                access.require(Permission.ADD_REACTIONS)
                if len(emoji_on_message) >= MAX_EMOJI_PER_MESSAGE:
                    raise InvalidInput(
                        f"A message has at most {MAX_EMOJI_PER_MESSAGE} different reactions.",
                        code="max_reactions",
                    )
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        reactions.insert().values(
                            message_id=message_id, emoji=key, user_id=user_id, created_at=now
                        )
                    )
            except IntegrityError:
                return  # already there (or a concurrent duplicate): nothing new to announce
            events.append(
                self._event("MESSAGE_REACTION_ADD", access.channel, user_id, message_id, key)
            )

    async def remove(
        self, actor_id: int, channel_id: int, message_id: int, emoji: str, user_id: int
    ) -> None:
        """Remove ``user_id``'s reaction; someone else's needs MANAGE_MESSAGES."""
        key = parse_emoji(emoji)
        async with self.outbox.write() as (conn, events):
            access = await channel_access(conn, channel_id, actor_id, self.clock())
            if user_id != actor_id:
                access.require(Permission.MANAGE_MESSAGES)
            await find_message(conn, channel_id, message_id)
            gone = await conn.execute(
                delete(reactions).where(
                    reactions.c.message_id == message_id,
                    reactions.c.emoji == key,
                    reactions.c.user_id == user_id,
                )
            )
            if gone.rowcount:
                events.append(
                    self._event("MESSAGE_REACTION_REMOVE", access.channel, user_id, message_id, key)
                )

    async def users(
        self,
        viewer_id: int,
        channel_id: int,
        message_id: int,
        emoji: str,
        *,
        after: int | None = None,
        limit: int = 25,
    ) -> list[User]:
        """Who reacted with ``emoji``, by ascending user id, after ``after``."""
        key = parse_emoji(emoji)
        reactions_limit(limit)
        async with self.db.read() as conn:
            access = await channel_access(conn, channel_id, viewer_id, self.clock())
            access.require(Permission.READ_MESSAGE_HISTORY)
            await find_message(conn, channel_id, message_id)
            query = (
                select(reactions.c.user_id)
                .where(reactions.c.message_id == message_id, reactions.c.emoji == key)
                .order_by(reactions.c.user_id)
                .limit(limit)
            )
            if after is not None:
                query = query.where(reactions.c.user_id > after)
            user_ids = list((await conn.execute(query)).scalars())
            people = await users_by_id(conn, user_ids)
        return [people[u] for u in user_ids if u in people]

    def _event(
        self, type_: str, channel: Row[Any], user_id: int, message_id: int, key: str
    ) -> Event:
        payload = ReactionEvent(
            user_id=str(user_id),
            channel_id=str(channel.id),
            message_id=str(message_id),
            guild_id=str(channel.guild_id) if channel.guild_id is not None else None,
            emoji=emoji_view(key),
        )
        return self.outbox.event(type_, stream_of(channel), payload)
