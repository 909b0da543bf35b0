"""What a batch writes in one statement for all its items: the channels' counters, the
authors' views, the nonce claims (when another transaction won some of them)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
import pytest
from chat_fixtures import add_channel, create_dm, join, person
from sqlalchemy import event, select, update

from miaou import ids
from miaou.bus import log
from miaou.chat import send_batch, send_rows_pg, sends
from miaou.chat.message_models import Message, MessageCreate
from miaou.chat.tables import channels, message_nonces, messages


async def test_a_batch_over_channels_and_a_dm_bumps_each_and_shows_each_author(
    node, guild, owner, member, make_client
) -> None:
    other = await add_channel(node, guild.id)
    friend = await person(make_client, "friend")
    dm = await create_dm(node, [member, friend])
    plan = [
        (member, guild.channel_id), (owner, other), (friend, dm), (member, other),
        (owner, guild.channel_id), (member, other),
    ]  # fmt: skip
    items = [
        send_batch.draft(who.uid, channel_id, MessageCreate(content=f"m{i}"))
        for i, (who, channel_id) in enumerate(plan)
    ]
    outcomes = await node.node.messages._write_sends(items)

    assert all(isinstance(m, Message) for m in outcomes)
    assert [(m.author.id, m.channel_id, m.content) for m in outcomes] == [
        (who.id, str(channel_id), f"m{i}") for i, (who, channel_id) in enumerate(plan)
    ]
    assert {m.author.username for m in outcomes} == {"owner", "member", "friend"}
    async with node.node.db.read() as conn:
        counters = {
            r.id: (r.message_count, r.last_message_id) for r in await conn.execute(select(channels))
        }
    for channel_id, sent in ((guild.channel_id, [0, 4]), (other, [1, 3, 5]), (dm, [2])):
        newest = max(int(outcomes[i].id) for i in sent)
        assert counters[channel_id] == (len(sent), newest)


async def test_a_claim_lost_in_a_batch_answers_with_the_winner_and_keeps_the_others(
    node, guild, member, monkeypatch, recorded
) -> None:
    """The race itself needs two writers at once (PostgreSQL); here the winner's claim is
    written into the batch's own transaction between the nonce check and the claims, which
    is what the batch then sees on either engine."""
    service = node.node.messages
    first = await member.client.send_message(guild.channel, "first")
    enforce = sends._enforce_slowmode

    async def claimed_meanwhile(batch: Any) -> None:
        await batch.conn.execute(
            message_nonces.insert().values(
                author_id=member.uid, nonce="b", message_id=int(first.id), created_at=batch.now
            )
        )
        await enforce(batch)

    monkeypatch.setattr(sends, "_enforce_slowmode", claimed_meanwhile)
    items = [
        send_batch.draft(member.uid, guild.channel_id, MessageCreate(content=text, nonce=nonce))
        for text, nonce in (("a", "a"), ("b", "b"), ("c", "c"))
    ]
    async with node.node.db.read() as conn:
        head = (await log.heads(conn, [f"guild:{guild.id}"]))[f"guild:{guild.id}"]
    a, b, c = await service._write_sends(items)

    assert isinstance(a, Message) and isinstance(b, Message) and isinstance(c, Message)
    assert (a.content, a.nonce, c.content, c.nonce) == ("a", "a", "c", "c")
    assert (b.id, b.content, b.nonce) == (first.id, "first", "b")
    async with node.node.db.read() as conn:
        stored = (await conn.execute(select(messages.c.id, messages.c.content))).all()
        claims = (await conn.execute(select(message_nonces))).all()
    assert sorted(content for _, content in stored) == ["a", "c", "first"]
    assert {(r.nonce, str(r.message_id)) for r in claims} == {
        ("a", a.id),
        ("b", first.id),
        ("c", c.id),
    }
    # Only the messages written have an event, logged at the next positions.
    created = [e for e in recorded if e.type == "MESSAGE_CREATE"][-2:]
    assert [(e.position, e.payload.id) for e in created] == [(head + 1, a.id), (head + 2, c.id)]
    async with node.node.db.read() as conn:
        stored = await log.read_after(conn, f"guild:{guild.id}", head, head + 5)
        assert (await log.heads(conn, [f"guild:{guild.id}"]))[f"guild:{guild.id}"] == head + 2
    assert [msgspec.json.decode(s.payload)["id"] for s in stored] == [a.id, c.id]


@contextmanager
def round_trips(node: Any) -> Iterator[list[str]]:
    """Every query the node's PostgreSQL connections send meanwhile, BEGIN and COMMIT too
    (asyncpg's query loggers, on each connection checked out)."""
    sent: list[str] = []
    loggers: list[Any] = []

    def log(record: Any) -> None:
        sent.append(record.query)

    def watch(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
        driver = dbapi_conn._connection
        driver.add_query_logger(log)
        loggers.append(driver)

    engine = node.node.db.engine.sync_engine
    event.listen(engine, "checkout", watch)
    try:
        yield sent
    finally:
        event.remove(engine, "checkout", watch)
        for driver in loggers:
            driver.remove_query_logger(log)


@pytest.mark.database_kinds("postgres")
async def test_a_batch_is_two_round_trips_on_postgresql(
    node, guild, owner, member, recorded
) -> None:
    """Whatever the batch's size: the reads (permissions and the nonces already claimed),
    then one statement in autocommit that writes the nonce claims, the messages, the
    channel counters and the events' stream log: no BEGIN, no COMMIT."""
    async with node.node.db.read() as conn:
        head = (await log.heads(conn, [f"guild:{guild.id}"]))[f"guild:{guild.id}"]
    plan = [(member, "n1"), (owner, None), (owner, "n1"), (member, None), (member, "n2")]
    items = [
        send_batch.draft(who.uid, guild.channel_id, MessageCreate(content=f"m{i}", nonce=nonce))
        for i, (who, nonce) in enumerate(plan)
    ]
    # Once before: a connection's first use of a type costs asyncpg a lookup.
    await node.node.messages._write_sends(
        [send_batch.draft(owner.uid, guild.channel_id, MessageCreate(content="warm", nonce="w"))]
    )
    head += 1
    with round_trips(node) as sent:
        outcomes = await node.node.messages._write_sends(items)
        await asyncio.sleep(0.01)  # asyncpg calls its loggers soon after, not at once
    assert len(sent) == 2, sent
    assert sent[0].lstrip().startswith("WITH found AS") and "stream_events" in sent[1]
    created = [e for e in recorded if e.type == "MESSAGE_CREATE"][1:]
    assert [(e.stream, e.position, e.payload.id) for e in created] == [
        (f"guild:{guild.id}", head + 1 + i, m.id) for i, m in enumerate(outcomes)
    ]
    async with node.node.db.read() as conn:
        stored = await log.read_after(conn, f"guild:{guild.id}", head, head + 5)
    assert [msgspec.json.decode(s.payload)["id"] for s in stored] == [m.id for m in outcomes]
    assert all(isinstance(m, Message) for m in outcomes)
    assert [m.content for m in outcomes] == [f"m{i}" for i in range(5)]
    async with node.node.db.read() as conn:
        query = select(channels).where(channels.c.id == guild.channel_id)
        (channel,) = (await conn.execute(query)).all()
        claims = {
            (r.author_id, r.nonce): str(r.message_id)
            for r in await conn.execute(select(message_nonces))
        }
    assert (channel.message_count, channel.last_message_id) == (
        6,
        int(outcomes[-1].id),
    )  # +1 warm-up
    del claims[(owner.uid, "w")]  # the warm-up's
    assert claims == {
        (member.uid, "n1"): outcomes[0].id,
        (owner.uid, "n1"): outcomes[2].id,
        (member.uid, "n2"): outcomes[4].id,
    }


@pytest.mark.database_kinds("postgres")
async def test_batches_at_once_log_each_message_once_at_gapless_positions(
    node, guild, owner, member, make_client
) -> None:
    """Batches written concurrently on their own connections, four in autocommit and one
    in a transaction (slow mode): every message stored, counted and logged once, the
    guild stream's positions gapless, no deadlock between the two paths."""
    slow = await add_channel(node, guild.id, slowmode=60)
    others = [await person(make_client, f"p{i}") for i in range(2)]
    for who in others:
        await join(node, guild, who)
    senders = [owner, member, *others]
    plain = [
        [
            send_batch.draft(who.uid, guild.channel_id, MessageCreate(content=f"{b}-{i}"))
            for i, who in enumerate(senders * 3)
        ]
        for b in range(4)
    ]
    slowed = [
        send_batch.draft(who.uid, slow, MessageCreate(content=f"slow {who.uid}"))
        for who in [member, *others]
    ]
    stream = f"guild:{guild.id}"
    async with node.node.db.read() as conn:
        head = (await log.heads(conn, [stream]))[stream]
    with round_trips(node) as queries:
        batches = await asyncio.gather(
            *(node.node.messages._write_sends(b) for b in [*plain, slowed])
        )
        await asyncio.sleep(0.01)
    assert sum(q.lstrip().upper().startswith("BEGIN") for q in queries) == 1, queries
    sent = [m for batch in batches for m in batch]
    assert all(isinstance(m, Message) for m in sent)
    async with node.node.db.read() as conn:
        stored = await log.read_after(conn, stream, head, head + len(sent) + 10)
        assert (await log.heads(conn, [stream]))[stream] == head + len(sent)
        counts = dict((await conn.execute(select(channels.c.id, channels.c.message_count))).all())
    assert [s.position for s in stored] == list(range(head + 1, head + len(sent) + 1))
    assert sorted(msgspec.json.decode(s.payload)["id"] for s in stored) == sorted(
        m.id for m in sent
    )
    assert (counts[guild.channel_id], counts[slow]) == (4 * len(senders) * 3, len(slowed))


async def committed_by_another_worker(node: Any, guild: Any, channel_id: int, who: Any) -> int:
    """A message as another worker would commit it just before ours: its id made 50 ms
    from now (its clock ahead, or its batch made after ours) with another worker number,
    and the channel's newest id moved to it, as its write does."""
    worker = (ids.id_worker(ids.new_id()) + 1) % (ids.MAX_WORKER + 1)
    ahead = ((ids.now_ms() + 50 - ids.MIAOU_EPOCH_MS) << ids.TIME_SHIFT) | (
        worker << ids.WORKER_SHIFT
    )
    async with node.node.db.write() as conn:
        await conn.execute(
            messages.insert().values(
                id=ahead,
                channel_id=channel_id,
                guild_id=guild.id,
                author_id=who.uid,
                content="theirs",
                mentions=[],
                mention_roles=[],
                mention_channels=[],
            )
        )
        await conn.execute(
            update(channels).where(channels.c.id == channel_id).values(last_message_id=ahead)
        )
    return ahead


@pytest.mark.database_kinds("postgres")
async def test_a_batch_behind_another_workers_commit_writes_after_it(
    node, guild, owner, member, monkeypatch, recorded
) -> None:
    """Ids grow in commit order in a channel, whichever worker writes: a batch in autocommit
    whose ids come before a message already committed there writes nothing, makes ids
    past it and writes again, so a page read with ``after`` is never passed by a later
    commit."""
    tries: list[int] = []
    write = send_rows_pg.write_rows_logged

    async def counted(*args: Any) -> Any:
        tries.append(len(args[1]))
        return await write(*args)

    monkeypatch.setattr(send_rows_pg, "write_rows_logged", counted)
    theirs = await committed_by_another_worker(node, guild, guild.channel_id, owner)
    retries = node.node.metrics.registry.get_sample_value("miaou_send_batch_retries_total")
    items = [
        send_batch.draft(who.uid, guild.channel_id, MessageCreate(content=f"m{i}"))
        for i, who in enumerate([member, owner, member])
    ]
    outcomes = await node.node.messages._write_sends(items)

    assert tries == [3, 3]  # refused once, then written
    assert (
        node.node.metrics.registry.get_sample_value("miaou_send_batch_retries_total") == retries + 1
    )
    assert all(isinstance(m, Message) for m in outcomes)
    mine = [int(m.id) for m in outcomes]
    assert theirs < mine[0] < mine[1] < mine[2]
    created = [e for e in recorded if e.type == "MESSAGE_CREATE"]
    assert [e.payload.id for e in created] == [m.id for m in outcomes]
    async with node.node.db.read() as conn:
        stored = (
            await conn.execute(
                select(messages.c.id).where(messages.c.channel_id == guild.channel_id)
            )
        ).scalars()
        (channel,) = (
            await conn.execute(select(channels).where(channels.c.id == guild.channel_id))
        ).all()
    assert sorted(stored) == [theirs, *mine]
    assert (channel.last_message_id, channel.message_count) == (mine[-1], 3)


@pytest.mark.database_kinds("postgres")
async def test_a_batch_in_a_transaction_makes_its_ids_after_its_channels_messages(
    node, guild, owner, member
) -> None:
    """The transaction path (slow mode here) locks its channels before it makes its ids,
    and makes them past every message they hold."""
    slow = await add_channel(node, guild.id, slowmode=60)
    theirs = await committed_by_another_worker(node, guild, slow, owner)
    (sent,) = await node.node.messages._write_sends(
        [send_batch.draft(member.uid, slow, MessageCreate(content="mine"))]
    )
    assert isinstance(sent, Message) and int(sent.id) > theirs
