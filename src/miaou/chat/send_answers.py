"""What each send of a batch is answered with: its message as its sender and the event get
it, or, for a repeated nonce, the first message (:mod:`miaou.chat.sends` writes them)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.accounts.models import User
from miaou.bus import Event
from miaou.chat import access_reads
from miaou.chat.attachment_rows import insert_attachments
from miaou.chat.message_models import UNSET, Attachment, Message
from miaou.chat.message_store import (
    message_view,
    message_views,
    referenced_views,
    users_by_id,
)
from miaou.chat.models import THREAD_TYPES
from miaou.chat.send_batch import Batch, Outcome, SendDraft
from miaou.chat.tables import channels, messages
from miaou.errors import Conflict

EventFactory = Callable[[str, Row[Any], object], Event]
_NONCES = access_reads.NONCES


async def answer_lost(batch: Batch, rows: dict[int, dict[str, Any]], lost: list[int]) -> None:
    """The sends whose nonce another transaction claimed first answer with its message."""
    winners = await batch.conn.execute(
        *_NONCES.bind(pairs=[(batch.items[i].user_id, batch.items[i].nonce) for i in lost])
    )
    by_key = {(r.author_id, r.nonce): r.message_id for r in winners.all()}
    for index in lost:
        del rows[index]
        batch.repeats[index] = by_key[(batch.items[index].user_id, batch.items[index].nonce)]


@dataclass(frozen=True, slots=True)
class ViewParts:
    """What the new messages' views need from the database: their authors and mentioned
    users, and the messages they reply to."""

    people: dict[int, User]
    referenced: dict[int, Message]


async def view_parts(batch: Batch, rows: dict[int, dict[str, Any]]) -> ViewParts:
    # Guild members' profiles came with their standing; DM authors and mentions are read.
    people: dict[int, User] = {}
    for index in rows:
        guild = batch.access[index].guild
        author = guild.profile() if guild is not None else None
        if author is not None:
            people[int(author.id)] = author
    wanted = {u for row in rows.values() for u in (row["author_id"], *row["mentions"])}
    people.update(await users_by_id(batch.conn, wanted - people.keys()))
    referenced = await referenced_views(batch.conn, {row["reference_id"] for row in rows.values()})
    return ViewParts(people, referenced)


def built_views(
    batch: Batch,
    rows: dict[int, dict[str, Any]],
    parts: ViewParts,
    attached: dict[int, list[Attachment]],
) -> dict[int, Message]:
    """The new messages as their senders get them (the events' payloads too)."""
    shown: dict[int, Message] = {}
    for index, row in rows.items():
        shape = SimpleNamespace(**row, edited_at=None, pinned_at=None)
        shown[index] = message_view(
            shape, parts.people, [], batch.items[index].body.nonce, attached.get(index),
            parts.referenced,
        )  # fmt: skip
    return shown


def created_event(batch: Batch, index: int, view: Message, event: EventFactory) -> Event:
    channel = batch.access[index].channel
    return event("MESSAGE_CREATE", channel, msgspec.structs.replace(view, reactions=UNSET))


async def created_in_transaction(
    batch: Batch, rows: dict[int, dict[str, Any]], events: list[Event], event: EventFactory
) -> None:
    """In the batch's transaction, after the rows: their files, outcomes and events; an
    archived thread reopened by its message."""
    conn, now = batch.conn, batch.now
    attached: dict[int, list[Attachment]] = {}
    for index, row in rows.items():
        item = batch.items[index]
        if item.files:
            attached[index] = await insert_attachments(
                conn, item.files, message_id=row["id"], channel_id=item.channel_id,
                uploader_id=item.user_id, now=now,
            )  # fmt: skip
    shown = built_views(batch, rows, await view_parts(batch, rows), attached)
    reopened: set[int] = set()
    for index in rows:
        channel = batch.access[index].channel
        batch.outcomes[index] = shown[index]
        events.append(created_event(batch, index, shown[index], event))
        if channel.type in THREAD_TYPES and channel.archived and channel.id not in reopened:
            # A message reopens an archived thread (locked ones were refused).
            reopened.add(channel.id)
            await conn.execute(
                update(channels)
                .where(channels.c.id == channel.id)
                .values(archived=False, archive_timestamp=now)
            )
            events.append(
                event("THREAD_UPDATE", channel, {"id": str(channel.id), "archived": False})
            )


async def answer_repeats(batch: Batch) -> list[Outcome]:
    """Repeated nonces answer with their first message; then every item has its outcome."""
    for index, message_id in batch.repeats.items():
        batch.outcomes[index] = await _repeat(batch.conn, batch.items[index], message_id)
    for index, first in batch.twins.items():
        answer = batch.outcomes[first]
        if isinstance(answer, Message):
            answer = msgspec.structs.replace(answer, nonce=batch.items[index].body.nonce)
        batch.outcomes[index] = copy.copy(answer)
    outcomes = [o for o in batch.outcomes if o is not None]
    assert len(outcomes) == len(batch.items), "every item has an outcome"
    return outcomes


async def _repeat(conn: AsyncConnection, item: SendDraft, message_id: int) -> Outcome:
    """The answer to a repeated nonce: the first message, if it was for this channel."""
    row = (await conn.execute(select(messages).where(messages.c.id == message_id))).one()
    if row.channel_id != item.channel_id:
        return Conflict(
            "This nonce was used for a message in another channel.",
            code="nonce_in_use",
            errors={"nonce": ["was used in another channel within 5 minutes"]},
        )
    return (await message_views(conn, [row], row.author_id, nonce=item.body.nonce))[0]
