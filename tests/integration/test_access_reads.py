"""A batch of permission checks reads the same rows, and reaches the same answers, in one
round trip on PostgreSQL as in its separate queries (``miaou.chat.access_reads``)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from chat_fixtures import (
    MEMBER_OVERWRITE,
    ROLE,
    GuildFixture,
    P,
    Person,
    add_channel,
    add_role,
    create_dm,
    create_guild,
    join,
    overwrite,
    person,
)
from sqlalchemy import event, update

from miaou import ids
from miaou.chat import access_reads
from miaou.chat.access import accesses_from, channel_accesses
from miaou.chat.models import ChannelType
from miaou.chat.tables import members, thread_members
from miaou.ids import now_ms

pytestmark = pytest.mark.database_kinds("postgres")


def normalised(reads: access_reads.AccessReads, pairs: list[tuple[int, int]]) -> Any:
    """The reads as comparable values; the separate queries skip what no check needs."""

    def rows(found: Any) -> list[tuple[Any, ...]]:
        return sorted((tuple(r._mapping.items()) for r in found), key=repr)

    asked = set(pairs)
    return (
        rows(reads.channels),
        rows(reads.standing),
        rows(reads.roles),
        rows(reads.overwrites) if reads.standing else [],  # no member: no check needs them
        reads.recipients & asked,
        reads.thread_members & asked,
    )


async def _world(node: Any, make_client: Any) -> tuple[list[Person], list[int]]:
    """People and channels covering every rule: roles and member overwrites, a denied
    channel, threads public and private (joined or not, managed or not), a category, a DM
    and a group DM, a member timed out, a stranger, a channel that does not exist."""
    owner = await person(make_client, "owner")
    guild: GuildFixture = await create_guild(node, owner)
    modder, plain, muted, lurker, stranger = [
        await person(make_client, name)
        for name in ("modder", "plain", "muted", "lurker", "stranger")
    ]
    managers = await add_role(node, guild.id, P.MANAGE_THREADS | P.VIEW_CHANNEL, position=2)
    quiet = await add_role(node, guild.id, 0, position=1)
    await join(node, guild, modder, managers)
    await join(node, guild, plain)
    await join(node, guild, muted, quiet)
    await join(node, guild, lurker)
    hidden = await add_channel(node, guild.id)
    await overwrite(node, hidden, guild.everyone, kind=ROLE, deny=P.VIEW_CHANNEL)
    await overwrite(node, hidden, plain.uid, kind=MEMBER_OVERWRITE, allow=P.VIEW_CHANNEL)
    await overwrite(node, guild.channel_id, quiet, kind=ROLE, deny=P.SEND_MESSAGES)
    public = await add_channel(node, guild.id, type=ChannelType.PUBLIC_THREAD, parent_id=hidden)
    private = await add_channel(
        node, guild.id, type=ChannelType.PRIVATE_THREAD, parent_id=guild.channel_id
    )
    category = await add_channel(node, guild.id, type=ChannelType.GUILD_CATEGORY)
    dm = await create_dm(node, [plain, stranger])
    group = await create_dm(node, [owner, lurker, stranger])
    async with node.node.db.write() as conn:
        await conn.execute(
            thread_members.insert().values(channel_id=private, user_id=lurker.uid, joined_at=1)
        )
        await conn.execute(
            update(members)
            .where(members.c.user_id == muted.uid)
            .values(communication_disabled_until=now_ms() + 60_000)
        )
    people = [owner, modder, plain, muted, lurker, stranger]
    channel_ids = [guild.channel_id, hidden, public, private, category, dm, group, ids.new_id()]
    return people, channel_ids


def decided(found: dict[tuple[int, int], Any]) -> dict[tuple[int, int], tuple[Any, ...]]:
    return {
        pair: (a.channel.id, a.guild and a.guild.guild_id, int(a.permissions))
        for pair, a in found.items()
    }


async def test_one_round_trip_reads_and_decides_as_the_separate_queries(node, make_client) -> None:
    people, channel_ids = await _world(node, make_client)
    everything = [(c, p.uid) for c, p in itertools.product(channel_ids, people)]
    # All at once, each channel alone (a thread without its parent among the asked), and
    # each pair alone.
    subsets = [everything, *([(c, u) for c, u in everything if c == one] for one in channel_ids)]
    subsets += [[pair] for pair in everything]
    now = now_ms()
    statements: list[str] = []

    def record(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        statements.append(statement)

    engine = node.node.db.engine.sync_engine
    async with node.node.db.read() as conn:
        for pairs in subsets:
            apart = await access_reads.read_one_by_one(conn, pairs)
            statements.clear()
            event.listen(engine, "before_cursor_execute", record)
            try:
                together = await access_reads.read_in_one_trip(conn, pairs)
                answer = await channel_accesses(conn, pairs, now)
            finally:
                event.remove(engine, "before_cursor_execute", record)
            assert len(statements) == 2  # one per call
            assert normalised(together, pairs) == normalised(apart, pairs), pairs
            expected = decided(accesses_from(apart, pairs, now))
            assert decided(accesses_from(together, pairs, now)) == expected, pairs
            assert decided(answer) == expected, pairs
        expected = decided(await channel_accesses(conn, everything, now))
    # The world exercises each rule: a sample of what it decided.
    owner, modder, plain, muted, lurker, stranger = (p.uid for p in people)
    general, hidden, public, private, category, dm, group, missing = channel_ids
    seen = set(expected)
    assert {(hidden, plain), (hidden, owner)} <= seen and (hidden, lurker) not in seen
    assert (public, plain) in seen and (public, lurker) not in seen  # the parent's overwrites
    assert {(private, lurker), (private, modder), (private, owner)} <= seen
    assert (private, plain) not in seen
    assert {(dm, plain), (dm, stranger), (group, lurker)} <= seen and (dm, owner) not in seen
    assert (category, plain) in seen and (general, stranger) not in seen
    assert not any(channel == missing for channel, _ in seen)
    assert expected[(general, muted)][2] & P.SEND_MESSAGES == 0
    assert expected[(general, plain)][2] & P.SEND_MESSAGES


async def test_the_nonces_asked_for_come_with_the_reads(node, make_client) -> None:
    people, channel_ids = await _world(node, make_client)
    owner, plain = people[0], people[2]
    sent = await plain.client.send_message(str(channel_ids[0]), "hi", nonce="n1")
    await owner.client.send_message(str(channel_ids[0]), "yo", nonce="n1")
    keys = [(plain.uid, "n1"), (plain.uid, "n2"), (people[1].uid, "n1")]
    pairs = [(channel_ids[0], plain.uid)]
    async with node.node.db.read() as conn:
        together = await access_reads.read_in_one_trip(conn, pairs, keys)
        apart = (await conn.execute(*access_reads.NONCES.bind(pairs=keys))).all()
        none_asked = await access_reads.read_in_one_trip(conn, pairs)
    assert [tuple(r) for r in together.nonces] == [tuple(r) for r in apart]
    assert [(r.author_id, r.nonce, str(r.message_id)) for r in together.nonces] == [
        (plain.uid, "n1", sent.id)
    ]
    assert none_asked.nonces == []
