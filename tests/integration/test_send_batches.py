"""Sends share transactions (group commit) yet keep every rule of a single send.

Many concurrent sends through the SDK land in few transactions; each refusal reaches only
its own sender; counters, ordering, nonces and slow mode hold across a batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from chat_fixtures import P, add_channel, count, create_guild, join, overwrite, person, rows
from node_marks import NO_RATE_LIMITS
from sqlalchemy import select

from miaou.chat.tables import channels, message_nonces, messages
from miaou.sdk import ApiError
from miaou.sdk.models import Message

pytestmark = NO_RATE_LIMITS


async def outcome(call: Any) -> Message | ApiError:
    try:
        result: Message = await call
        return result
    except ApiError as error:
        return error


async def test_concurrent_sends_share_transactions_and_refusals_stay_their_own(
    node, make_client, recorded
) -> None:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    senders = [await person(make_client, f"s{i}") for i in range(6)]
    for who in senders:
        await join(node, guild, who)
    muted = await person(make_client, "muted")
    await join(node, guild, muted)
    await overwrite(node, guild.channel_id, muted.uid, kind=1, deny=P.SEND_MESSAGES)
    stranger = await person(make_client, "stranger")
    group = node.node.messages.sends
    batches_before = group.batches

    calls = []
    for round_ in range(5):
        calls += [who.client.send_message(guild.channel, f"{round_}") for who in senders]
        calls.append(muted.client.send_message(guild.channel, "shh"))
        calls.append(stranger.client.send_message(guild.channel, "hi"))
    results = await asyncio.gather(*(outcome(c) for c in calls))

    sent = [r for r in results if isinstance(r, Message)]
    refusals = [(r.status, r.code) for r in results if isinstance(r, ApiError)]
    assert len(sent) == 30
    assert sorted(refusals) == [(403, "missing_permissions")] * 5 + [(404, "unknown_channel")] * 5
    assert group.batches - batches_before < 30  # shared transactions
    async with httpx.AsyncClient(base_url=node.url) as http:
        exposed = (await http.get("/metrics")).text
    assert f"miaou_send_batch_items_total {float(group.items)}" in exposed
    assert f"miaou_send_batches_total {float(group.batches)}" in exposed
    # Everything acknowledged is stored, once, and the channel's counters agree.
    stored = await rows(
        node, select(messages.c.id).where(messages.c.channel_id == guild.channel_id)
    )
    assert sorted(r.id for r in stored) == sorted(int(m.id) for m in sent)
    (channel,) = await rows(node, select(channels).where(channels.c.id == guild.channel_id))
    assert channel.message_count == 30
    assert channel.last_message_id == max(int(m.id) for m in sent)
    # One event per stored message, published in the order of their ids.
    created = [e.payload.id for e in recorded if e.type == "MESSAGE_CREATE"]
    assert sorted(created, key=int) == sorted(m.id for m in sent)
    assert created == sorted(created, key=int)


async def test_one_nonce_within_a_batch_makes_one_message(node, make_client) -> None:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    other = str(await add_channel(node, guild.id))
    results = await asyncio.gather(
        *(
            outcome(owner.client.send_message(guild.channel, f"try {i}", nonce="n"))
            for i in range(6)
        ),
        outcome(owner.client.send_message(other, "elsewhere", nonce="n")),
    )
    messages_ = [r for r in results if isinstance(r, Message)]
    errors = [r for r in results if isinstance(r, ApiError)]
    ids_ = {m.id for m in messages_}
    assert len(ids_) == 1 and all(m.nonce == "n" for m in messages_)
    # Whichever channel won the nonce, the other side is told it is in use.
    assert {(e.status, e.code) for e in errors} <= {(409, "nonce_in_use")}
    assert len(messages_) + len(errors) == 7
    assert await count(node, messages) == 1
    assert await count(node, message_nonces) == 1


async def test_slow_mode_lets_one_of_a_burst_through(node, make_client) -> None:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner, slowmode=30)
    alice = await person(make_client, "alice")
    await join(node, guild, alice)
    results = await asyncio.gather(
        *(outcome(alice.client.send_message(guild.channel, f"{i}")) for i in range(6))
    )
    assert sum(isinstance(r, Message) for r in results) == 1
    assert all((r.status, r.code) == (429, "slowmode") for r in results if isinstance(r, ApiError))
    assert await count(node, messages) == 1


async def test_replies_and_mentions_in_one_batch(node, make_client) -> None:
    owner = await person(make_client, "owner")
    guild = await create_guild(node, owner)
    bob = await person(make_client, "bob")
    await join(node, guild, bob)
    first = await owner.client.send_message(guild.channel, "root")
    results = await asyncio.gather(
        bob.client.send_message(guild.channel, "re", reply_to=first.id),
        bob.client.send_message(guild.channel, f"hey <@{owner.id}>"),
        owner.client.send_message(guild.channel, f"hey <@{bob.id}>"),
        outcome(bob.client.send_message(guild.channel, "re", reply_to="1234")),
    )
    reply, ping_owner, ping_bob, dangling = results
    assert reply.message_reference is not None
    assert reply.message_reference.message_id == first.id
    assert [u.id for u in ping_owner.mentions] == [owner.id]
    assert [u.id for u in ping_bob.mentions] == [bob.id]
    # A reply to a message that does not exist is refused (fail_if_not_exists defaults on).
    assert isinstance(dangling, ApiError)
    assert (dangling.status, dangling.code) == (400, "invalid_reference")
    assert await count(node, messages) == 4
