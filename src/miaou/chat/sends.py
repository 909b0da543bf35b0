"""Sending messages, many per transaction.

:class:`miaou.chat.messages.MessageService` validates a send on its own (:func:`draft`)
and queues it on a :class:`miaou.db.group_commit.GroupCommit`; :func:`write_sends` then
writes a whole batch in one transaction. Every rule of a send is checked inside that
transaction, against what it reads, so a batch is exactly as strict as one send at a time:
who may send here (one :func:`miaou.chat.access.channel_accesses` call for the batch), the
nonce, slow mode, the reply reference, the mentions. Each refusal belongs to its own item
(returned as an exception instance); the other items go on.

Idempotent send: a ``nonce`` from the same author within five minutes answers with the
first message and creates nothing. The ``message_nonces`` primary key decides races with
other transactions: a claim that finds the nonce taken withdraws its message and answers
with the winner's. A nonce older than the window is taken over by the new message.

Statements per batch, whatever its size, for plain messages: channels and access, with the
nonces already claimed (4 or 5 on SQLite, 1 on PostgreSQL: :mod:`miaou.chat.access_reads`;
they bring guild members' profiles too), then the writes: on SQLite one multi-row
insert, the nonce claims, one channel bump (one execution for all the batch's channels); on
PostgreSQL all three in one statement (:mod:`miaou.chat.send_rows_pg`); and the DM authors.
Replies, mentions, files and slow mode add their own queries, per item that has them. The
hot ones are built once, at import (:mod:`miaou.db.keyed` says why).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import msgspec
from sqlalchemy import BigInteger, bindparam, case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from miaou import ids
from miaou.accounts.models import User
from miaou.bus import Event
from miaou.chat import access_reads, mentions, send_rows_pg
from miaou.chat.access import ChannelAccess, accesses_from, missing, unknown_channel
from miaou.chat.attachment_rows import insert_attachments
from miaou.chat.media import StoredFile
from miaou.chat.message_models import (
    CONTENT_MAX,
    NONCE_MAX,
    UNSET,
    AllowedMentions,
    Attachment,
    Message,
    MessageCreate,
    MessageType,
)
from miaou.chat.message_store import (
    message_view,
    message_views,
    referenced_views,
    resolve_mentions,
    users_by_id,
)
from miaou.chat.models import TEXT_TYPES, THREAD_TYPES
from miaou.chat.permissions import Permission
from miaou.chat.tables import channels, members, message_nonces, messages
from miaou.config import MAX_ATTACHMENTS
from miaou.db import direct
from miaou.db.keyed import Keyed
from miaou.errors import Conflict, Forbidden, InvalidInput, MiaouError, RateLimited

NONCE_WINDOW_MS = 5 * 60 * 1000
SLOWMODE_BYPASS = (
    Permission.MANAGE_MESSAGES | Permission.MANAGE_CHANNELS | Permission.BYPASS_SLOWMODE
)

Outcome = Message | MiaouError
EventFactory = Callable[[str, Row[Any], object], Event]

# Every batch's statements, built once (miaou.db.keyed says why).
_INSERT_MESSAGES = direct.register(messages.insert())
_NONCES = access_reads.NONCES
_CLAIMS = {
    name: direct.register(
        dialect.insert(message_nonces)
        .on_conflict_do_nothing()
        .returning(message_nonces.c.author_id, message_nonces.c.nonce)
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_REFERENCES = Keyed(
    lambda key: select(messages.c.id, messages.c.channel_id, messages.c.author_id).where(
        key("ids", messages.c.id), messages.c.deleted_at.is_(None)
    )
)
_last = channels.c.last_message_id
_newest: BindParameter[int] = bindparam("newest", BigInteger)
_BUMP = direct.register(
    update(channels)
    .where(channels.c.id == bindparam("channel"))
    .values(
        # Concurrent batches may commit out of id order: never move it backwards.
        last_message_id=case((or_(_last.is_(None), _last < _newest), _newest), else_=_last),
        message_count=channels.c.message_count + bindparam("added"),
    )
)


def invalid_field(field: str, problem: str, code: str = "invalid_input") -> InvalidInput:
    """400 naming the one field that is wrong (Discord's ``errors`` shape)."""
    return InvalidInput(f"Invalid {field}: {problem}.", code=code, errors={field: [problem]})


def clean_content(raw: str, *, allow_empty: bool = False) -> str:
    """Surrounding whitespace is dropped (Discord does); the markdown source is kept as is.
    ``allow_empty``: a message with attachments needs no text."""
    content = raw.strip()
    if not (0 if allow_empty else 1) <= len(content) <= CONTENT_MAX:
        raise invalid_field("content", f"must be 1 to {CONTENT_MAX} characters", "invalid_content")
    return content


def clean_nonce(nonce: str | int | None) -> str | None:
    """Stored as text: the integer 12 and the string "12" are the same nonce."""
    if nonce is None:
        return None
    text = str(nonce)
    if isinstance(nonce, bool) or not 1 <= len(text) <= NONCE_MAX:
        raise invalid_field(
            "nonce", f"must be an integer or a string of 1 to {NONCE_MAX} characters"
        )
    return text


def check_allowed_mentions(allowed: AllowedMentions | None) -> None:
    if allowed is None:
        return
    for kind in ("users", "roles"):
        listed: list[str] = getattr(allowed, kind)
        if listed and kind in allowed.parse:
            raise invalid_field("allowed_mentions", f'"{kind}" in parse and a {kind} list exclude')
        if len(listed) > 100:
            raise invalid_field("allowed_mentions", f"at most 100 {kind}")


@dataclass(frozen=True, slots=True)
class SendDraft:
    """A send whose body is valid on its own; the rest is checked in its transaction."""

    user_id: int
    channel_id: int
    body: MessageCreate
    files: Sequence[StoredFile]
    content: str
    nonce: str | None
    parsed: mentions.ParsedMentions


def draft(
    user_id: int, channel_id: int, body: MessageCreate, files: Sequence[StoredFile] = ()
) -> SendDraft:
    """Check what needs no database: 400 here, before the send is queued."""
    if len(files) > MAX_ATTACHMENTS:
        raise invalid_field("files", f"at most {MAX_ATTACHMENTS} files", "max_attachments")
    content = clean_content(body.content, allow_empty=bool(files))
    nonce = clean_nonce(body.nonce)
    check_allowed_mentions(body.allowed_mentions)
    return SendDraft(user_id, channel_id, body, files, content, nonce, mentions.parse(content))


def slowmode_seconds(access: ChannelAccess) -> int:
    seconds: int = access.channel.rate_limit_per_user or 0
    if not seconds or access.permissions & SLOWMODE_BYPASS or access.guild is None:
        return 0
    return seconds


def _may_send(access: ChannelAccess | None, item: SendDraft) -> ChannelAccess:
    if access is None:
        raise unknown_channel()
    channel = access.channel
    if channel.type not in TEXT_TYPES:
        raise InvalidInput(
            "Messages cannot be sent in this type of channel.", code="invalid_channel_type"
        )
    is_thread = channel.type in THREAD_TYPES
    access.require(Permission.SEND_MESSAGES_IN_THREADS if is_thread else Permission.SEND_MESSAGES)
    if is_thread and channel.locked and not access.has(Permission.MANAGE_THREADS):
        raise Forbidden("This thread is locked.", code="thread_locked")
    if item.files and not access.has(Permission.ATTACH_FILES):
        raise missing(Permission.ATTACH_FILES)
    return access


class _Batch:
    """One batch's transaction: which items are still in, and why the others are out."""

    def __init__(self, conn: AsyncConnection, items: Sequence[SendDraft], now: int) -> None:
        self.conn = conn
        self.items = items
        self.now = now
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.access: dict[int, ChannelAccess] = {}
        # Item index -> the message id that answers it (an earlier send with its nonce).
        self.repeats: dict[int, int] = {}
        # Item index -> the index of an earlier item of this batch with the same nonce.
        self.twins: dict[int, int] = {}
        self.stale_nonces: set[int] = set()

    def live(self) -> list[int]:
        """Items still to be written as new messages."""
        return [
            i
            for i in range(len(self.items))
            if self.outcomes[i] is None and i not in self.repeats and i not in self.twins
        ]

    def refuse(self, index: int, error: MiaouError) -> None:
        self.outcomes[index] = error


async def write_sends(
    conn: AsyncConnection, events: list[Event], items: Sequence[SendDraft], now: int,
    event: EventFactory, *, at_once: bool = False,
) -> list[Outcome] | None:  # fmt: skip
    """Write ``items`` in the open transaction ``conn``; one outcome per item, in order.

    ``at_once`` (PostgreSQL, ``conn`` from ``Database.autocommit``): the batch's writes and
    their events' log in one statement that commits by itself (:func:`_write_at_once`);
    ``events`` then receives them positioned and already logged (to publish, not to log
    again). None, with nothing written, if the batch needs a transaction
    (:func:`_needs_transaction`): the caller writes it again in one."""
    batch = _Batch(conn, items, now)
    pairs = list({(i.channel_id, i.user_id) for i in items})
    nonce_keys = list({(i.user_id, i.nonce) for i in items if i.nonce is not None})
    # With the nonces' claims: one round trip on PostgreSQL (miaou.chat.access_reads).
    reads = await access_reads.read(conn, pairs, nonce_keys)
    found = accesses_from(reads, pairs, now)
    for index, item in enumerate(items):
        try:
            batch.access[index] = _may_send(found.get((item.channel_id, item.user_id)), item)
        except MiaouError as exc:
            batch.refuse(index, exc)
    _sort_nonces(batch, reads.nonces)
    if at_once and _needs_transaction(batch):
        return None
    await _enforce_slowmode(batch)
    references = await _references(batch)
    rows: dict[int, dict[str, Any]] = {}
    for index in batch.live():
        item, access = items[index], batch.access[index]
        reference_id, replied_author = references.get(index, (None, None))
        allowed = item.body.allowed_mentions
        found_mentions = await resolve_mentions(
            conn, access, item.parsed, allowed, now,
            replied_author=replied_author if allowed and allowed.replied_user else None,
        )  # fmt: skip
        rows[index] = dict(
            id=ids.new_id(), channel_id=item.channel_id, guild_id=access.channel.guild_id,
            author_id=item.user_id, content=item.content, reference_id=reference_id,
            type=MessageType.REPLY if reference_id else MessageType.DEFAULT,
            mention_everyone=found_mentions.everyone, mentions=found_mentions.users,
            mention_roles=found_mentions.roles, mention_channels=found_mentions.channels,
            has_link=item.parsed.has_link, has_attachments=bool(item.files),
        )  # fmt: skip
    if at_once:
        await _write_at_once(batch, rows, events, event)
    elif rows and conn.dialect.name == "postgresql" and not batch.stale_nonces:
        await _write_rows_pg(batch, rows)
        await _created(batch, rows, events, event)
    else:
        if rows:
            await conn.execute(_INSERT_MESSAGES, list(rows.values()))
            await _claim_nonces(batch, rows)
            await _bump_channels(conn, rows.values())  # the messages that stayed
        await _created(batch, rows, events, event)
    return await _answer_repeats(batch)


def _needs_transaction(batch: _Batch) -> bool:
    """What one statement in autocommit cannot do: slow mode (its member row lock), files
    (their rows), reopening an archived thread, taking over an expired nonce."""
    if batch.stale_nonces:
        return True
    for index in batch.live():
        access = batch.access[index]
        channel = access.channel
        if batch.items[index].files or slowmode_seconds(access):
            return True
        if channel.type in THREAD_TYPES and channel.archived:
            return True
    return False


async def _write_at_once(
    batch: _Batch, rows: dict[int, dict[str, Any]], events: list[Event], event: EventFactory
) -> None:
    """PostgreSQL, in autocommit: the messages' views and events made first (they depend on
    nothing the write decides), then one statement writes the rows and logs the events of
    those it inserted (:func:`miaou.chat.send_rows_pg.write_rows_logged`)."""
    if not rows:
        return
    views = await _views(batch, rows, {})
    order = list(rows)
    created = [_created_event(batch, i, views[i], event) for i in order]
    inserted, logged = await send_rows_pg.write_rows_logged(
        batch.conn, [rows[i] for i in order], _claims(batch, order), batch.now, created
    )
    events.extend(logged)
    lost = [i for i in order if rows[i]["id"] not in inserted]
    if lost:
        await _answer_lost(batch, rows, lost)
    for index in rows:
        batch.outcomes[index] = views[index]


async def _write_rows_pg(batch: _Batch, rows: dict[int, dict[str, Any]]) -> None:
    """PostgreSQL: insert, claim and bump in one statement (:mod:`miaou.chat.send_rows_pg`);
    a send whose claim was lost was not inserted and answers with the winner's message."""
    order = list(rows)
    inserted = await send_rows_pg.write_rows(
        batch.conn, [rows[i] for i in order], _claims(batch, order), batch.now
    )
    lost = [i for i in order if rows[i]["id"] not in inserted]
    if lost:
        await _answer_lost(batch, rows, lost)


def _claims(batch: _Batch, order: Sequence[int]) -> list[tuple[int, str] | None]:
    """Each item's nonce claim (author, nonce), None for an item without a nonce."""
    return [
        (batch.items[i].user_id, nonce) if (nonce := batch.items[i].nonce) is not None else None
        for i in order
    ]


def _sort_nonces(batch: _Batch, claims: Sequence[Any]) -> None:
    """Answer repeated nonces with their first message; note the ones to take over.
    ``claims``: the rows of the batch's nonces already claimed (read with its access)."""
    wanted = [i for i in batch.live() if batch.items[i].nonce is not None]
    if not wanted:
        return
    keys = [(batch.items[i].user_id, batch.items[i].nonce) for i in wanted]
    owners = {(r.author_id, r.nonce): r for r in claims}
    first_in_batch: dict[tuple[int, str | None], int] = {}
    for index, key in zip(wanted, keys, strict=True):
        owner = owners.get(key)
        if owner is not None and owner.created_at >= batch.now - NONCE_WINDOW_MS:
            batch.repeats[index] = owner.message_id
        elif key in first_in_batch:
            batch.twins[index] = first_in_batch[key]
        else:
            first_in_batch[key] = index
            if owner is not None:
                batch.stale_nonces.add(index)


async def _enforce_slowmode(batch: _Batch) -> None:
    seen: set[tuple[int, int]] = set()
    for index in batch.live():
        item, access = batch.items[index], batch.access[index]
        seconds = slowmode_seconds(access)
        if not seconds:
            continue
        # Serialise this member's sends (PostgreSQL) so two transactions cannot both pass.
        await batch.conn.execute(
            select(members.c.user_id)
            .where(members.c.guild_id == access.channel.guild_id, members.c.user_id == item.user_id)
            .with_for_update()
        )
        key = (item.channel_id, item.user_id)
        wait_ms = seconds * 1000 if key in seen else await _slowmode_wait(batch, item, seconds)
        if wait_ms > 0:
            error = RateLimited(
                wait_ms / 1000, f"Slow mode: one message every {seconds} s in this channel."
            )
            error.code = "slowmode"
            batch.refuse(index, error)
        else:
            seen.add(key)


async def _slowmode_wait(batch: _Batch, item: SendDraft, seconds: int) -> int:
    window = seconds * 1000
    # Ids are time-sortable: only the window's messages of this channel are scanned.
    last = await batch.conn.execute(
        select(messages.c.id)
        .where(
            messages.c.channel_id == item.channel_id,
            messages.c.id >= ids.smallest_id_at(batch.now - window),
            messages.c.author_id == item.user_id,
        )
        .order_by(messages.c.id.desc())
        .limit(1)
    )
    last_id = last.scalar()
    return 0 if last_id is None else ids.id_time_ms(last_id) + window - batch.now


async def _references(batch: _Batch) -> dict[int, tuple[int | None, int | None]]:
    """Per replying item: (referenced message id, its author), a live message of the same
    channel; a missing one is refused or dropped as ``fail_if_not_exists`` says."""
    asked: dict[int, tuple[int | None, bool]] = {}
    for index in batch.live():
        item = batch.items[index]
        ref = item.body.message_reference
        if ref is None:
            continue
        same_channel = ref.channel_id is None or ids.parse_id(ref.channel_id) == item.channel_id
        asked[index] = (ids.parse_id(ref.message_id) if same_channel else None, same_channel)
    wanted = {m for m, _ in asked.values() if m is not None}
    found: dict[int, Any] = {}
    if wanted:
        rows = await batch.conn.execute(*_REFERENCES.bind(ids=wanted))
        found = {r.id: r for r in rows.all()}
    answer: dict[int, tuple[int | None, int | None]] = {}
    for index, (message_id, same_channel) in asked.items():
        item = batch.items[index]
        row = found.get(message_id) if message_id is not None else None
        if row is not None and row.channel_id == item.channel_id:
            answer[index] = (row.id, row.author_id)
            continue
        ref = item.body.message_reference
        assert ref is not None
        if ref.fail_if_not_exists or not same_channel:
            batch.refuse(
                index,
                invalid_field("message_reference", "must be a message of this channel",
                         "invalid_reference"),
            )  # fmt: skip
    return answer


async def _claim_nonces(batch: _Batch, rows: dict[int, dict[str, Any]]) -> None:
    """Claim the new messages' nonces; a send that loses a claim to another transaction
    withdraws its message and answers with the winner's."""
    fresh = [i for i in rows if batch.items[i].nonce is not None and i not in batch.stale_nonces]
    lost: list[int] = []
    if fresh:
        claims = [
            {"author_id": batch.items[i].user_id, "nonce": batch.items[i].nonce,
             "message_id": rows[i]["id"], "created_at": batch.now}
            for i in fresh
        ]  # fmt: skip
        won = await batch.conn.execute(_CLAIMS[batch.conn.dialect.name], claims)
        claimed = {(r.author_id, r.nonce) for r in won.all()}
        lost = [i for i in fresh if (batch.items[i].user_id, batch.items[i].nonce) not in claimed]
    for index in sorted(batch.stale_nonces & rows.keys()):
        # Take over an expired nonce, unless a concurrent send took it over first: the row
        # lock makes us wait for it, and then the re-checked condition no longer holds.
        item = batch.items[index]
        taken = await batch.conn.execute(
            update(message_nonces)
            .where(
                message_nonces.c.author_id == item.user_id,
                message_nonces.c.nonce == item.nonce,
                message_nonces.c.created_at < batch.now - NONCE_WINDOW_MS,
            )
            .values(message_id=rows[index]["id"], created_at=batch.now)
        )
        if taken.rowcount != 1:
            lost.append(index)
    if not lost:
        return
    await batch.conn.execute(
        delete(messages).where(messages.c.id.in_([rows[i]["id"] for i in lost]))
    )
    await _answer_lost(batch, rows, lost)


async def _answer_lost(batch: _Batch, rows: dict[int, dict[str, Any]], lost: list[int]) -> None:
    """The sends whose nonce another transaction claimed first answer with its message."""
    winners = await batch.conn.execute(
        *_NONCES.bind(pairs=[(batch.items[i].user_id, batch.items[i].nonce) for i in lost])
    )
    by_key = {(r.author_id, r.nonce): r.message_id for r in winners.all()}
    for index in lost:
        del rows[index]
        batch.repeats[index] = by_key[(batch.items[index].user_id, batch.items[index].nonce)]


async def _views(
    batch: _Batch, rows: dict[int, dict[str, Any]], attached: dict[int, list[Attachment]]
) -> dict[int, Message]:
    """The new messages as their senders get them (the events' payloads too)."""
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
    views: dict[int, Message] = {}
    for index, row in rows.items():
        shape = SimpleNamespace(**row, edited_at=None, pinned_at=None)
        views[index] = message_view(
            shape, people, [], batch.items[index].body.nonce, attached.get(index), referenced
        )
    return views


def _created_event(batch: _Batch, index: int, view: Message, event: EventFactory) -> Event:
    channel = batch.access[index].channel
    return event("MESSAGE_CREATE", channel, msgspec.structs.replace(view, reactions=UNSET))


async def _created(
    batch: _Batch, rows: dict[int, dict[str, Any]], events: list[Event], event: EventFactory
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
    views = await _views(batch, rows, attached)
    reopened: set[int] = set()
    for index in rows:
        channel = batch.access[index].channel
        batch.outcomes[index] = views[index]
        events.append(_created_event(batch, index, views[index], event))
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


async def _answer_repeats(batch: _Batch) -> list[Outcome]:
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


async def _bump_channels(conn: AsyncConnection, rows: Any) -> None:
    """Each channel's newest message id and count, in one execution (channel order: two
    batches lock the rows they share in the same order)."""
    per_channel: dict[int, tuple[int, int]] = {}
    for row in rows:
        newest, count = per_channel.get(row["channel_id"], (0, 0))
        per_channel[row["channel_id"]] = (max(newest, row["id"]), count + 1)
    if not per_channel:
        return
    await conn.execute(
        _BUMP,
        [
            {"channel": channel_id, "newest": newest, "added": count}
            for channel_id, (newest, count) in sorted(per_channel.items())
        ],
    )
