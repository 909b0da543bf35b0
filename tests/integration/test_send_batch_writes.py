"""What a batch writes in one statement for all its items: the channels' counters, the
authors' views, the nonce claims (when another transaction won some of them)."""

from __future__ import annotations

from typing import Any

import pytest
from chat_fixtures import add_channel, create_dm, person
from sqlalchemy import event, select

from miaou.chat import sends
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
        sends.draft(who.uid, channel_id, MessageCreate(content=f"m{i}"))
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
    node, guild, member, monkeypatch
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
        sends.draft(member.uid, guild.channel_id, MessageCreate(content=text, nonce=nonce))
        for text, nonce in (("a", "a"), ("b", "b"), ("c", "c"))
    ]
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


@pytest.mark.database_kinds("postgres")
async def test_a_batch_writes_in_one_statement_on_postgresql(node, guild, owner, member) -> None:
    """Three round trips whatever the batch's size: the reads (permissions and the nonces
    already claimed), the writes (nonce claims, messages, channel counters) and the stream
    log."""
    plan = [(member, "n1"), (owner, None), (owner, "n1"), (member, None), (member, "n2")]
    items = [
        sends.draft(who.uid, guild.channel_id, MessageCreate(content=f"m{i}", nonce=nonce))
        for i, (who, nonce) in enumerate(plan)
    ]
    statements: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    engine = node.node.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        outcomes = await node.node.messages._write_sends(items)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(statements) == 3, statements
    assert all(isinstance(m, Message) for m in outcomes)
    assert [m.content for m in outcomes] == [f"m{i}" for i in range(5)]
    async with node.node.db.read() as conn:
        query = select(channels).where(channels.c.id == guild.channel_id)
        (channel,) = (await conn.execute(query)).all()
        claims = {
            (r.author_id, r.nonce): str(r.message_id)
            for r in await conn.execute(select(message_nonces))
        }
    assert (channel.message_count, channel.last_message_id) == (5, int(outcomes[-1].id))
    assert claims == {
        (member.uid, "n1"): outcomes[0].id,
        (owner.uid, "n1"): outcomes[2].id,
        (member.uid, "n2"): outcomes[4].id,
    }
