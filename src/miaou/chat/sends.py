"""Sending messages, many per database write.

:class:`miaou.chat.messages.MessageService` validates a send on its own
(:func:`miaou.chat.send_batch.draft`) and queues it on a
:class:`miaou.db.group_commit.GroupCommit`; :func:`write_sends` then writes a whole batch
together. Every rule of a send is checked against what the batch reads, so a batch is
exactly as strict as one send at a time: who may send here (one access read for the
batch), the nonce, slow mode, the reply reference, the mentions. Each refusal belongs to
its own item (returned as an exception instance); the other items go on.
:mod:`miaou.chat.send_answers` makes each item's answer and event.

Idempotent send: a ``nonce`` from the same author within five minutes answers with the
first message and creates nothing. The ``message_nonces`` primary key decides races with
other writers: a claim that finds the nonce taken answers with the winner's message (its
own is not written, or withdrawn). A nonce older than the window is taken over by the new
message.

Round trips per batch, whatever its size, for plain messages:

- PostgreSQL, two and no transaction: the reads in one statement (channels, access, the
  nonces already claimed, guild members' profiles: :mod:`miaou.chat.access_reads`), then
  one statement in autocommit that claims the nonces, inserts the messages, bumps the
  channels and logs the events of the messages it inserted
  (:mod:`miaou.chat.send_rows_pg`), their answers made before it (nothing in them depends
  on the write). What one statement cannot do keeps a transaction (BEGIN, the reads, one
  write statement without the log, the log, COMMIT): slow mode (a member row lock),
  files, reopening an archived thread, taking over an expired nonce.
- SQLite (inline, no round trip to save): in one transaction, the reads (4 or 5 queries),
  one multi-row insert, the nonce claims, one channel bump, the log.

DM authors, replies, mentions, files and slow mode add their own queries, per item that
has them. The hot ones are built once, at import (:mod:`miaou.db.keyed` says why).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BigInteger, bindparam, case, delete, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import BindParameter

from miaou import ids
from miaou.bus import Event
from miaou.chat import access_reads, send_answers, send_rows_pg
from miaou.chat.access import ChannelAccess, accesses_from, missing, unknown_channel
from miaou.chat.message_models import MessageType
from miaou.chat.message_store import resolve_mentions
from miaou.chat.models import TEXT_TYPES, THREAD_TYPES
from miaou.chat.permissions import Permission
from miaou.chat.send_answers import EventFactory
from miaou.chat.send_batch import Batch, Outcome, SendDraft, invalid_field
from miaou.chat.tables import channels, members, message_nonces, messages
from miaou.db import direct
from miaou.db.keyed import Keyed
from miaou.errors import Forbidden, InvalidInput, MiaouError, RateLimited

NONCE_WINDOW_MS = 5 * 60 * 1000
SLOWMODE_BYPASS = (
    Permission.MANAGE_MESSAGES | Permission.MANAGE_CHANNELS | Permission.BYPASS_SLOWMODE
)

#: Tries of a batch in autocommit whose channels' messages got ahead of its ids.
LATE_TRIES = 3

# Every batch's statements, built once (miaou.db.keyed says why).
_INSERT_MESSAGES = direct.register(messages.insert())
_CLAIMS = {
    name: direct.register(
        dialect.insert(message_nonces)
        .on_conflict_do_nothing()
        .returning(message_nonces.c.author_id, message_nonces.c.nonce)
    )
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}
_LOCK_CHANNELS = direct.register(
    text(
        """
        SELECT max(last_message_id) AS newest FROM (
            SELECT last_message_id FROM channels
            WHERE id IN (SELECT unnest(CAST(:channels AS bigint[])))
            ORDER BY id FOR UPDATE
        ) AS locked
        """
    ).columns(newest=BigInteger)
)
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


async def write_sends(
    conn: AsyncConnection, events: list[Event], items: Sequence[SendDraft], now: int,
    event: EventFactory, *, at_once: bool = False, on_late: Callable[[], None] | None = None,
) -> list[Outcome] | None:  # fmt: skip
    """Write ``items`` in the open transaction ``conn``; one outcome per item, in order.

    ``at_once`` (PostgreSQL, ``conn`` from ``Database.autocommit``): the batch's writes and
    their events' log in one statement that commits by itself (:func:`_write_at_once`);
    ``events`` then receives them positioned and already logged (to publish, not to log
    again). None, with nothing written, if the batch needs a transaction
    (:func:`_needs_transaction`): the caller writes it again in one. ``on_late`` is told
    each time another worker's commit made it write again (a metric)."""
    batch = Batch(conn, items, now)
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
            id=None, channel_id=item.channel_id, guild_id=access.channel.guild_id,
            author_id=item.user_id, content=item.content, reference_id=reference_id,
            type=MessageType.REPLY if reference_id else MessageType.DEFAULT,
            mention_everyone=found_mentions.everyone, mentions=found_mentions.users,
            mention_roles=found_mentions.roles, mention_channels=found_mentions.channels,
            has_link=item.parsed.has_link, has_attachments=bool(item.files),
        )  # fmt: skip
    if at_once:
        if not await _write_at_once(batch, rows, events, event, on_late):
            return None
    else:
        if rows and conn.dialect.name == "postgresql":
            await _lock_channels(batch, rows)
        _number(rows)
        if rows and conn.dialect.name == "postgresql" and not batch.stale_nonces:
            await _write_rows_pg(batch, rows)
        elif rows:
            await conn.execute(_INSERT_MESSAGES, list(rows.values()))
            await _claim_nonces(batch, rows)
            await _bump_channels(conn, rows.values())  # the messages that stayed
        await send_answers.created_in_transaction(batch, rows, events, event)
    return await send_answers.answer_repeats(batch)


def _needs_transaction(batch: Batch) -> bool:
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
    batch: Batch, rows: dict[int, dict[str, Any]], events: list[Event], event: EventFactory,
    on_late: Callable[[], None] | None,
) -> bool:  # fmt: skip
    """PostgreSQL, in autocommit: the messages' views and events made first (they depend on
    nothing the write decides), then one statement writes the rows and logs the events of
    those it inserted (:func:`miaou.chat.send_rows_pg.write_rows_logged`). If another
    worker's later ids committed first in one of the channels, nothing was written: new
    ids past them, and again. False, with nothing written, after :data:`LATE_TRIES`."""
    if not rows:
        return True
    parts = await send_answers.view_parts(batch, rows)
    order = list(rows)
    for _ in range(LATE_TRIES):
        _number(rows)
        views = send_answers.built_views(batch, rows, parts, {})
        created = [send_answers.created_event(batch, i, views[i], event) for i in order]
        try:
            inserted, logged = await send_rows_pg.write_rows_logged(
                batch.conn, [rows[i] for i in order], _claims(batch, order), batch.now, created
            )
        except send_rows_pg.Late as late:
            ids.advance_past(late.newest)
            if on_late is not None:
                on_late()
            continue
        events.extend(logged)
        await _answer_uninserted(batch, rows, inserted)
        for index in rows:
            batch.outcomes[index] = views[index]
        return True
    return False


def _number(rows: dict[int, dict[str, Any]]) -> None:
    """The messages' ids, in the batch's order, made as late as can be: just before the
    write, so that another worker's batch rarely commits a later id first."""
    for row in rows.values():
        row["id"] = ids.new_id()


async def _lock_channels(batch: Batch, rows: dict[int, dict[str, Any]]) -> None:
    """PostgreSQL, in the batch's transaction: lock its channels (in id order) until
    commit, and make its ids after every message they hold, so that a channel's ids grow
    in commit order with several workers (as :func:`_write_at_once` checks)."""
    wanted = sorted({row["channel_id"] for row in rows.values()})
    newest = (await batch.conn.execute(_LOCK_CHANNELS, {"channels": wanted})).scalar()
    if newest is not None:
        ids.advance_past(newest)


async def _write_rows_pg(batch: Batch, rows: dict[int, dict[str, Any]]) -> None:
    """PostgreSQL: insert, claim and bump in one statement (:mod:`miaou.chat.send_rows_pg`);
    a send whose claim was lost was not inserted and answers with the winner's message."""
    order = list(rows)
    inserted = await send_rows_pg.write_rows(
        batch.conn, [rows[i] for i in order], _claims(batch, order), batch.now
    )
    await _answer_uninserted(batch, rows, inserted)


async def _answer_uninserted(
    batch: Batch, rows: dict[int, dict[str, Any]], inserted: set[int]
) -> None:
    """The rows one statement did not insert lost their nonce's claim: they answer with the
    winner's message."""
    lost = [i for i in rows if rows[i]["id"] not in inserted]
    if lost:
        await send_answers.answer_lost(batch, rows, lost)


def _claims(batch: Batch, order: Sequence[int]) -> list[tuple[int, str] | None]:
    """Each item's nonce claim (author, nonce), None for an item without a nonce."""
    return [
        (batch.items[i].user_id, nonce) if (nonce := batch.items[i].nonce) is not None else None
        for i in order
    ]


def _sort_nonces(batch: Batch, claims: Sequence[Any]) -> None:
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


async def _enforce_slowmode(batch: Batch) -> None:
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


async def _slowmode_wait(batch: Batch, item: SendDraft, seconds: int) -> int:
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


async def _references(batch: Batch) -> dict[int, tuple[int | None, int | None]]:
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


async def _claim_nonces(batch: Batch, rows: dict[int, dict[str, Any]]) -> None:
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
    await send_answers.answer_lost(batch, rows, lost)


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
