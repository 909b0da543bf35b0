"""Guild message search over HTTP, against a real node, on every database kind.

The guild is set up with SQL (``chat_fixtures``); messages go through the messages API, so
the index is fed by the database's own maintenance (triggers / generated column).
"""

from __future__ import annotations

from typing import Any

import pytest
from chat_fixtures import (
    MEMBER_OVERWRITE,
    GuildFixture,
    P,
    Person,
    add_channel,
    overwrite,
    person,
)
from node_marks import NO_RATE_LIMITS
from sqlalchemy import delete, text, update

from miaou import ids
from miaou.chat import search as search_module
from miaou.chat.models import ChannelType
from miaou.chat.tables import messages, thread_members
from miaou.db import migrate
from miaou.ids import now_ms
from miaou.sdk import ApiError, Client

pytestmark = NO_RATE_LIMITS


async def search(client: Client, guild: GuildFixture, **params: Any) -> dict[str, Any]:
    response = await client.request(
        "GET", f"/api/v1/guilds/{guild.id}/messages/search", params=params
    )
    result: dict[str, Any] = response.json()
    return result


async def found(client: Client, guild: GuildFixture, **params: Any) -> list[str]:
    """Ids of the hits, in the order given; checks the Discord shape on the way."""
    result = await search(client, guild, **params)
    assert all(len(hit) == 1 for hit in result["messages"])
    return [hit[0]["id"] for hit in result["messages"]]


async def send(who: Person, channel: str | int, content: str) -> str:
    return (await who.client.send_message(str(channel), content)).id


async def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


async def test_terms_match_every_word_and_rank_by_relevance(guild, owner, member) -> None:
    short = await send(owner, guild.channel, "The quick brown fox")
    repeated = await send(member, guild.channel, "brown fox, brown fox, brown FOX")
    await send(owner, guild.channel, "a lazy dog")
    long = await send(
        owner, guild.channel,
        "Brown bread and then a red fox jumping over many other words in a long sentence",
    )  # fmt: skip

    assert await found(member.client, guild, content="brown fox") == [long, repeated, short]
    assert await found(member.client, guild, content="FOX Brown", sort_by="timestamp",
                       sort_order="asc") == [short, repeated, long]  # fmt: skip
    ranked = await found(member.client, guild, content="brown fox", sort_by="relevance")
    assert ranked == [repeated, short, long]
    result = await search(member.client, guild, content="fox")
    assert result["total_results"] == 3
    hit = result["messages"][0][0]
    assert (hit["id"], hit["channel_id"], hit["guild_id"]) == (long, guild.channel, str(guild.id))
    assert hit["author"]["id"] == owner.id and "fox" in hit["content"]
    assert await found(member.client, guild, content="cat") == []
    assert (await search(member.client, guild))["total_results"] == 4  # no terms: everything


async def test_filters(node, guild, owner, member) -> None:
    other = await add_channel(node, guild.id)
    first = await send(owner, guild.channel, "release notes for the cat tree")
    linked = await send(member, guild.channel, "cat tree at https://example.com/tree")
    pinged = await send(owner, other, f"<@{member.id}> the cat tree is built")
    filed = await send(member, other, "cat tree photo")
    async with node.node.db.write() as conn:  # no attachment API yet: mark it directly
        await conn.execute(
            update(messages).where(messages.c.id == int(filed)).values(has_attachments=True)
        )
    await owner.client.pin_message(guild.channel, first)
    c = member.client

    assert await found(c, guild, content="cat", author_id=member.id) == [filed, linked]
    assert await found(c, guild, content="cat", channel_id=str(other)) == [filed, pinged]
    assert await found(c, guild, channel_id=[str(other), guild.channel]) == [
        filed, pinged, linked, first,
    ]  # fmt: skip
    assert await found(c, guild, has="link") == [linked]
    assert await found(c, guild, has="attachment") == [filed]
    assert await found(c, guild, has=["attachment", "link"]) == []
    assert await found(c, guild, pinned="true") == [first]
    assert await found(c, guild, pinned="false") == [filed, pinged, linked]
    assert await found(c, guild, min_id=first, max_id=filed) == [pinged, linked]
    assert await found(c, guild, mentions=member.id) == [pinged]
    assert await found(c, guild, mentions=owner.id) == []
    assert await found(c, guild, content="tree", author_id=owner.id, channel_id=str(other),
                       mentions=member.id) == [pinged]  # fmt: skip


async def test_unreadable_channels_never_contribute(node, make_client, guild, owner, member):
    hidden = await add_channel(node, guild.id)
    await overwrite(node, hidden, guild.everyone, deny=P.VIEW_CHANNEL)
    no_history = await add_channel(node, guild.id)
    await overwrite(node, no_history, guild.everyone, deny=P.READ_MESSAGE_HISTORY)
    secret = await send(owner, hidden, "secret plan alpha")
    old = await send(owner, no_history, "secret plan beta")
    public = await send(owner, guild.channel, "public plan")

    assert await found(member.client, guild, content="plan") == [public]
    assert await found(member.client, guild, content="secret") == []
    assert await found(member.client, guild, content="secret", channel_id=str(hidden)) == []
    assert (await search(member.client, guild, content="secret"))["total_results"] == 0
    assert await found(owner.client, guild, content="secret") == [old, secret]
    # A member let in by an overwrite of their own reads it.
    await overwrite(node, hidden, member.uid, kind=MEMBER_OVERWRITE, allow=P.VIEW_CHANNEL)
    assert await found(member.client, guild, content="secret") == [secret]

    outsider = await person(make_client, "outsider")
    error = await refused(search(outsider.client, guild, content="plan"))
    assert (error.status, error.code) == (404, "unknown_guild")


async def test_threads_follow_their_parent(node, guild, owner, member) -> None:
    hidden = await add_channel(node, guild.id)
    await overwrite(node, hidden, guild.everyone, deny=P.VIEW_CHANNEL)
    public_thread = await add_channel(
        node, guild.id, type=ChannelType.PUBLIC_THREAD, parent_id=guild.channel_id
    )
    hidden_thread = await add_channel(
        node, guild.id, type=ChannelType.PUBLIC_THREAD, parent_id=hidden
    )
    private_thread = await add_channel(
        node, guild.id, type=ChannelType.PRIVATE_THREAD, parent_id=guild.channel_id
    )
    in_public = await send(owner, public_thread, "thread talk one")
    await send(owner, hidden_thread, "thread talk two")
    in_private = await send(owner, private_thread, "thread talk three")

    assert await found(member.client, guild, content="thread talk") == [in_public]
    async with node.node.db.write() as conn:
        await conn.execute(
            thread_members.insert().values(
                channel_id=private_thread, user_id=member.uid, joined_at=now_ms()
            )
        )
    assert await found(member.client, guild, content="thread talk") == [in_private, in_public]


async def test_index_follows_edits_deletes_and_any_writer(node, guild, owner, member) -> None:
    message = await send(member, guild.channel, "meet at the old oak")
    assert await found(owner.client, guild, content="oak") == [message]

    await member.client.edit_message(guild.channel, message, "meet at the new willow")
    assert await found(owner.client, guild, content="oak") == []
    assert await found(owner.client, guild, content="old") == []
    assert await found(owner.client, guild, content="willow") == [message]

    await member.client.delete_message(guild.channel, message)
    for words in ("willow", "meet", "oak"):
        assert await found(owner.client, guild, content=words) == []
    assert (await search(owner.client, guild))["total_results"] == 0

    # Writes that bypass the service are indexed too: the database maintains the index.
    raw = ids.new_id()
    async with node.node.db.write() as conn:
        await conn.execute(
            messages.insert().values(
                id=raw, channel_id=guild.channel_id, guild_id=guild.id, author_id=owner.uid,
                content="imported from the archive", mentions=[], mention_roles=[],
                mention_channels=[],
            )
        )  # fmt: skip
    assert await found(owner.client, guild, content="archive") == [str(raw)]
    async with node.node.db.write() as conn:
        await conn.execute(
            update(messages).where(messages.c.id == raw).values(content="restored copy")
        )
    assert await found(owner.client, guild, content="archive") == []
    assert await found(owner.client, guild, content="restored") == [str(raw)]
    # Even a tombstone that kept its text is not searchable: the index holds live text only.
    async with node.node.db.write() as conn:
        await conn.execute(update(messages).where(messages.c.id == raw).values(deleted_at=1))
    assert await found(owner.client, guild, content="restored") == []
    async with node.node.db.write() as conn:
        await conn.execute(update(messages).where(messages.c.id == raw).values(deleted_at=None))
    assert await found(owner.client, guild, content="restored") == [str(raw)]
    async with node.node.db.write() as conn:
        await conn.execute(delete(messages).where(messages.c.id == raw))
    assert await found(owner.client, guild, content="restored") == []


async def test_migration_indexes_the_messages_already_there(node, guild, owner) -> None:
    kept = await send(owner, guild.channel, "written before search existed")
    gone = await send(owner, guild.channel, "written and deleted before search existed")
    await owner.client.delete_message(guild.channel, gone)
    await migrate.downgrade(node.node.db, "0002")
    await migrate.upgrade(node.node.db)
    assert await found(owner.client, guild, content="before search existed") == [kept]


HOSTILE = [
    '"',
    '""',
    '"unterminated',
    'fox"',
    "(",
    ")",
    "((fox",
    "fox)",
    "NEAR",
    "NEAR(fox dog)",
    "NEAR(fox dog, 2)",
    "fox NEAR dog",
    "*",
    "fox*",
    "*fox",
    "-",
    "-fox",
    "fox -dog",
    "AND",
    "OR",
    "NOT",
    "fox AND",
    "OR fox",
    "NOT NOT",
    "content:fox",
    "{content}: fox",
    "^fox",
    "fox + dog",
    "'; DROP TABLE messages; --",
    "\\",
    "%",
    "_",
    ":",
    "!!!",
    "&|!<>",
    "\x00fox",
    "fox\x07",
    "😺",
    "🦊 fox",
    "猫が好き",
    "ÇA VA",
    "e\u0301",
    "\u200b",
    " ",
    "a" * 1024,
    "fox " * 100,
]


async def test_hostile_queries_never_error(guild, owner, member) -> None:
    fox = await send(owner, guild.channel, "the fox and the dog, ça va? café")
    for query in HOSTILE:
        for sort in ("relevance", "timestamp"):
            result = await search(member.client, guild, content=query, sort_by=sort)
            assert result["total_results"] in (0, 1), query
    # Operators are words, not syntax: what is left of them is searched for literally.
    assert await found(member.client, guild, content="-fox") == [fox]
    assert await found(member.client, guild, content="fox*") == [fox]
    assert await found(member.client, guild, content="(fox) AND") == [fox]  # the word "and"
    assert await found(member.client, guild, content="NEAR(fox dog)") == []
    assert await found(member.client, guild, content='"fox" "dog"') == [fox]
    assert await found(member.client, guild, content="CAFÉ") == [fox]
    assert await found(member.client, guild, content="😺") == []


async def test_pagination(guild, owner, member) -> None:
    sent = [await send(owner, guild.channel, f"page item {n}") for n in range(30)]
    await send(owner, guild.channel, "unrelated")
    newest_first = list(reversed(sent))
    pages = []
    for offset in (0, 10, 20):
        result = await search(member.client, guild, content="page", limit=10, offset=offset)
        assert result["total_results"] == 30
        pages += [hit[0]["id"] for hit in result["messages"]]
    assert pages == newest_first
    assert await found(member.client, guild, content="page", offset=30) == []
    default = await search(member.client, guild, content="item")
    assert (default["total_results"], len(default["messages"])) == (30, 25)
    last = await found(member.client, guild, content="page", sort_by="relevance", limit=5,
                       offset=25)  # fmt: skip
    assert len(last) == 5


async def test_counts_stop_at_the_cap_and_relevance_ranks_the_newest(
    guild, owner, member, monkeypatch
) -> None:
    """Small bounds stand in for the real ones (5,000 counted, 1,000 ranked)."""
    monkeypatch.setattr(search_module, "RESULTS_CAP", 6)
    monkeypatch.setattr(search_module, "RANK_WINDOW", 4)
    # The oldest match is the most relevant one (the word three times in a short text).
    best_but_old = await send(owner, guild.channel, "lark lark lark")
    rest = [
        await send(owner, guild.channel, f"a lark among many other words, number {n}")
        for n in range(7)
    ]
    by_time = await search(member.client, guild, content="lark")
    assert by_time["total_results"] == 6  # 8 matches, counted up to the cap
    ranked = await search(member.client, guild, content="lark", sort_by="relevance")
    assert ranked["total_results"] == 4
    ranked_ids = [hit[0]["id"] for hit in ranked["messages"]]
    assert sorted(ranked_ids) == sorted(rest[-4:])  # only the newest four are ranked
    assert best_but_old not in ranked_ids


async def test_bad_parameters_are_400_with_field_errors(guild, member) -> None:
    error = await refused(
        search(
            member.client, guild, limit=26, offset=5001, sort_by="best", sort_order="up",
            has="poll", author_id="me", min_id="x", pinned="maybe", content="x" * 1025,
        )
    )  # fmt: skip
    assert (error.status, error.code) == (400, "invalid_input")
    assert set(error.errors) == {
        "limit", "offset", "sort_by", "sort_order", "has", "author_id", "min_id", "pinned",
        "content",
    }  # fmt: skip
    for params in ({"limit": "0"}, {"limit": "ten"}, {"offset": "-1"}, {"channel_id": "c"}):
        error = await refused(search(member.client, guild, **params))
        assert error.status == 400 and list(error.errors) == list(params), params
    error = await refused(
        member.client.request("GET", "/api/v1/guilds/nope/messages/search", params={})
    )
    assert (error.status, error.code) == (404, "unknown_guild")


async def test_planner_settings_stay_inside_the_search(node, guild, member) -> None:
    """PostgreSQL searches plan with their own costs (SET LOCAL); pooled connections must
    not carry them into other transactions."""
    await send(member, guild.channel, "planner words")
    assert await found(member.client, guild, content="planner") != []
    if node.node.db.is_sqlite:
        return  # nothing is set on SQLite
    pool_size = node.node.db.engine.pool.size()
    for _ in range(pool_size + 2):  # visits every pooled connection, the search's among them
        async with node.node.db.read() as conn:
            cost = (await conn.execute(text("SELECT current_setting('random_page_cost')"))).scalar()
            assert cost == "4"
