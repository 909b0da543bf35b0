"""Messages, pins and reactions over HTTP, through the SDK, against a real node.

Guilds and permissions are set up with SQL (``chat_fixtures``) so each test states exactly
which bits a member has. Events are recorded from the node's bus.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import pytest
from chat_fixtures import (
    MEMBER,
    MEMBER_OVERWRITE,
    P,
    add_channel,
    add_emoji,
    add_role,
    count,
    create_dm,
    create_guild,
    join,
    overwrite,
    person,
    rows,
)
from node_marks import NO_RATE_LIMITS
from sqlalchemy import select

from miaou import ids
from miaou.bus import Event
from miaou.chat.audit import AuditAction
from miaou.chat.message_models import MessageCreate
from miaou.chat.models import ChannelType
from miaou.chat.tables import audit_log, channels, message_nonces, message_versions, messages
from miaou.chat.tables import reactions as reactions_table
from miaou.sdk import ApiError
from miaou.sdk.models import Message

pytestmark = NO_RATE_LIMITS


async def refused(call: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        await call
    return caught.value


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


# -- send and read ---------------------------------------------------------------------------
async def test_send_then_read_back(node, guild, owner, member, recorded) -> None:
    sent = await member.client.send_message(guild.channel, "  hello **world**  ")
    assert sent.content == "hello **world**"  # trimmed, markdown kept as source
    assert (sent.channel_id, sent.guild_id) == (guild.channel, str(guild.id))
    assert sent.author.id == member.id and sent.author.username == "member"
    assert sent.timestamp == ids.id_time_ms(int(sent.id))
    assert (sent.type, sent.pinned, sent.edited_timestamp, sent.reactions) == (0, False, None, [])

    fetched = await owner.client.message(guild.channel, sent.id)
    assert (fetched.id, fetched.content, fetched.author.id) == (sent.id, sent.content, member.id)
    channel = (await rows(node, select(channels).where(channels.c.id == guild.channel_id)))[0]
    assert channel.last_message_id == int(sent.id)

    assert types(recorded) == ["MESSAGE_CREATE"]
    event = recorded[0]
    assert event.stream == f"guild:{guild.id}"
    assert event.payload.id == sent.id and event.payload.content == "hello **world**"
    # A broadcast carries nothing per recipient: no reactions with their "me".
    assert b"reactions" not in __import__("msgspec").json.encode(event.payload)


@pytest.mark.parametrize(
    ("content", "problem"),
    [("", "must be 1 to 4000 characters"), ("   \n ", "must be 1 to 4000 characters"),
     ("x" * 4001, "must be 1 to 4000 characters")],
)  # fmt: skip
async def test_content_bounds(node, guild, member, content, problem) -> None:
    error = await refused(member.client.send_message(guild.channel, content))
    assert (error.status, error.code, error.errors) == (
        400,
        "invalid_content",
        {"content": [problem]},
    )
    assert await count(node, messages) == 0
    longest = await member.client.send_message(guild.channel, "y" * 4000)
    assert len(longest.content) == 4000


async def test_unknown_fields_and_junk_ids(node, guild, member) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        auth = {"authorization": f"Bearer {member.client.token}"}
        extra = await http.post(
            f"/api/v1/channels/{guild.channel}/messages",
            json={"content": "hi", "tts": True},
            headers=auth,
        )
        junk_channel = await http.get("/api/v1/channels/nope/messages", headers=auth)
        junk_message = await http.get(
            f"/api/v1/channels/{guild.channel}/messages/12x", headers=auth
        )
        junk_query = await http.get(
            f"/api/v1/channels/{guild.channel}/messages", params={"before": "abc"}, headers=auth
        )
    assert extra.status_code == 400 and extra.json()["errors"] == {"tts": ["is not a known field"]}
    assert (junk_channel.status_code, junk_channel.json()["code"]) == (404, "unknown_channel")
    assert (junk_message.status_code, junk_message.json()["code"]) == (404, "unknown_message")
    assert junk_query.status_code == 400 and junk_query.json()["errors"] == {
        "before": ["is not an id"]
    }


# -- nonces --------------------------------------------------------------------------------------
async def test_same_nonce_returns_the_first_message(node, guild, member, recorded) -> None:
    first = await member.client.send_message(guild.channel, "once", nonce="n-1")
    again = await member.client.send_message(guild.channel, "once more", nonce="n-1")
    assert again.id == first.id and again.content == "once" and again.nonce == "n-1"
    assert await count(node, messages) == 1
    assert types(recorded) == ["MESSAGE_CREATE"]  # the retry announced nothing
    # An integer nonce is the same nonce as its decimal string.
    numeric = await member.client.send_message(guild.channel, "n", nonce=12)
    assert (await member.client.send_message(guild.channel, "n", nonce="12")).id == numeric.id
    error = await refused(member.client.send_message(guild.channel, "x", nonce="z" * 26))
    assert error.status == 400 and "nonce" in error.errors


async def test_concurrent_sends_with_one_nonce_make_one_message(node, guild, member) -> None:
    sent = await asyncio.gather(
        *(member.client.send_message(guild.channel, f"try {i}", nonce="race") for i in range(8))
    )
    assert len({m.id for m in sent}) == 1
    assert await count(node, messages) == 1
    assert await count(node, message_nonces) == 1


async def test_nonces_are_per_author(node, guild, owner, member) -> None:
    mine = await member.client.send_message(guild.channel, "mine", nonce="shared")
    theirs = await owner.client.send_message(guild.channel, "theirs", nonce="shared")
    assert mine.id != theirs.id and theirs.author.id == owner.id
    assert await count(node, messages) == 2


async def test_expired_nonce_is_taken_over(node, guild, member) -> None:
    first = await member.client.send_message(guild.channel, "early", nonce="old")
    service = node.node.messages
    real_clock = service.clock
    service.clock = lambda: real_clock() + 6 * 60 * 1000  # five minutes later, and some
    later = await member.client.send_message(guild.channel, "later", nonce="old")
    assert later.id != first.id
    (owner_row,) = await rows(node, select(message_nonces))
    assert owner_row.message_id == int(later.id)
    # Within the window of the new one, the nonce answers with it.
    assert (await member.client.send_message(guild.channel, "x", nonce="old")).id == later.id


async def test_nonce_from_another_channel_conflicts(node, guild, member) -> None:
    other = await add_channel(node, guild.id)
    await member.client.send_message(guild.channel, "here", nonce="n")
    error = await refused(member.client.send_message(str(other), "there", nonce="n"))
    assert (error.status, error.code) == (409, "nonce_in_use")


# -- edit, versions, delete ------------------------------------------------------------------
async def test_edit_keeps_every_version(node, guild, owner, member, recorded) -> None:
    sent = await member.client.send_message(guild.channel, "v1")
    first_edit = await member.client.edit_message(guild.channel, sent.id, "v2")
    assert first_edit.content == "v2" and first_edit.edited_timestamp is not None
    await member.client.edit_message(guild.channel, sent.id, "v3")
    unchanged = await member.client.edit_message(guild.channel, sent.id, "  v3 ")
    assert unchanged.content == "v3"

    versions = await owner.client.message_versions(guild.channel, sent.id)
    assert [(v.version, v.content) for v in versions] == [(1, "v1"), (2, "v2")]
    assert versions[0].created_at == sent.timestamp
    assert versions[1].created_at == versions[0].replaced_at
    assert (await owner.client.message(guild.channel, sent.id)).content == "v3"
    # The unchanged "edit" stored and announced nothing.
    assert types(recorded) == ["MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_UPDATE"]
    assert recorded[-1].payload.content == "v3"

    error = await refused(owner.client.edit_message(guild.channel, sent.id, "hijack"))
    assert (error.status, error.code) == (403, "not_author")
    assert await count(node, message_versions) == 2


async def test_delete_leaves_a_tombstone(node, guild, owner, member, recorded) -> None:
    keep = await member.client.send_message(guild.channel, "keep")
    gone = await member.client.send_message(guild.channel, "secret")
    await member.client.edit_message(guild.channel, gone.id, "secret, edited")
    await owner.client.add_reaction(guild.channel, gone.id, "👍")
    recorded.clear()

    await member.client.delete_message(guild.channel, gone.id)
    assert [m.id for m in await member.client.messages(guild.channel)] == [keep.id]
    for call in (
        owner.client.message(guild.channel, gone.id),
        owner.client.message_versions(guild.channel, gone.id),
        member.client.edit_message(guild.channel, gone.id, "back"),
        member.client.delete_message(guild.channel, gone.id),
    ):
        error = await refused(call)
        assert (error.status, error.code) == (404, "unknown_message")
    (row,) = await rows(node, select(messages).where(messages.c.id == int(gone.id)))
    assert row.deleted_at is not None and row.content == ""
    assert await count(node, message_versions) == 0
    assert await count(node, reactions_table) == 0
    assert types(recorded) == ["MESSAGE_DELETE"]
    assert recorded[0].payload.id == gone.id
    # The author deleting their own message is not moderation: no audit entry.
    assert await count(node, audit_log) == 0


async def test_moderators_delete_others_messages_with_an_audit_entry(
    node, make_client, guild, owner, member
) -> None:
    moderator = await person(make_client, "modo")
    await join(node, guild, moderator, await add_role(node, guild.id, P.MANAGE_MESSAGES))
    sent = await owner.client.send_message(guild.channel, "owner's words")

    error = await refused(member.client.delete_message(guild.channel, sent.id))
    assert (error.status, error.code) == (403, "missing_permissions")
    await moderator.client.delete_message(guild.channel, sent.id, reason="spam")
    (entry,) = await rows(node, select(audit_log))
    assert entry.action == AuditAction.MESSAGE_DELETE
    assert (entry.actor_id, entry.target_id, entry.reason) == (moderator.uid, owner.uid, "spam")
    assert entry.changes["message_id"] == sent.id


# -- history -------------------------------------------------------------------------------------
async def test_history_before_after_around(node, guild, member) -> None:
    sent = [await member.client.send_message(guild.channel, f"m{i}") for i in range(30)]
    id_of = [m.id for m in sent]

    async def page(**params: Any) -> list[str]:
        return [m.id for m in await member.client.messages(guild.channel, **params)]

    assert await page() == id_of[::-1]  # newest first, default limit 50
    assert await page(limit=10) == id_of[29:19:-1]
    assert await page(before=id_of[10], limit=5) == id_of[9:4:-1]
    assert await page(after=id_of[10], limit=5) == id_of[15:10:-1]
    assert await page(after=id_of[27]) == id_of[29:27:-1]
    # around: up to half newer than it, then it and older ones.
    assert await page(around=id_of[15], limit=10) == id_of[20:10:-1]
    assert await page(around=id_of[15], limit=1) == [id_of[15]]
    assert await page(around=id_of[1], limit=10) == id_of[6::-1]  # m6..m2, then m1 and m0
    assert await page(before=id_of[0]) == []

    # Walking back page by page visits each message once.
    seen: list[str] = []
    before = None
    while chunk := await page(before=before, limit=7) if before else await page(limit=7):
        seen += chunk
        before = chunk[-1]
    assert seen == id_of[::-1]

    await member.client.delete_message(guild.channel, id_of[15])
    assert id_of[15] not in await page()
    assert await page(around=id_of[15], limit=4) == [id_of[17], id_of[16], id_of[14], id_of[13]]


async def test_paging_back_is_stable_while_messages_arrive(node, guild, owner, member) -> None:
    old = [await member.client.send_message(guild.channel, f"old {i}") for i in range(12)]
    first_page = await owner.client.messages(guild.channel, limit=5)
    # New messages land while the reader pages back: the cursor is an id, not an offset,
    # so the next pages neither repeat nor skip anything.
    await asyncio.gather(
        *(member.client.send_message(guild.channel, f"new {i}") for i in range(10)),
        *(owner.client.send_message(guild.channel, f"new owner {i}") for i in range(5)),
    )
    seen = [m.id for m in first_page]
    while page := await owner.client.messages(guild.channel, before=seen[-1], limit=5):
        seen += [m.id for m in page]
    assert seen == [m.id for m in old][::-1]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"limit": -1}, {"before": "1", "after": "2"}],
)
async def test_history_bounds(node, guild, member, params) -> None:
    error = await refused(member.client.messages(guild.channel, **params))
    assert error.status == 400


async def test_history_limit_100_is_allowed(node, guild, member) -> None:
    await member.client.send_message(guild.channel, "one")
    assert len(await member.client.messages(guild.channel, limit=100)) == 1


# -- permissions ---------------------------------------------------------------------------------
async def test_who_may_read_and_send(node, make_client, guild, owner, member) -> None:
    sent = await owner.client.send_message(guild.channel, "hello")
    stranger = await person(make_client, "stranger")
    hidden = await person(make_client, "hidden")
    mute = await person(make_client, "mute")
    forgetful = await person(make_client, "forgetful")
    for who in (hidden, mute, forgetful):
        await join(node, guild, who)
    await overwrite(node, guild.channel_id, hidden.uid, kind=MEMBER_OVERWRITE, deny=P.VIEW_CHANNEL)
    await overwrite(node, guild.channel_id, mute.uid, kind=MEMBER_OVERWRITE, deny=P.SEND_MESSAGES)
    await overwrite(
        node, guild.channel_id, forgetful.uid, kind=MEMBER_OVERWRITE, deny=P.READ_MESSAGE_HISTORY
    )

    # Not a member, or cannot view: the channel does not exist for them.
    for who in (stranger, hidden):
        for call in (
            who.client.send_message(guild.channel, "hi"),
            who.client.messages(guild.channel),
            who.client.message(guild.channel, sent.id),
            who.client.add_reaction(guild.channel, sent.id, "👍"),
            who.client.pins(guild.channel),
        ):
            error = await refused(call)
            assert (error.status, error.code) == (404, "unknown_channel")

    error = await refused(mute.client.send_message(guild.channel, "hi"))
    assert (error.status, error.code) == (403, "missing_permissions")
    assert [m.id for m in await mute.client.messages(guild.channel)] == [sent.id]

    for call in (
        forgetful.client.messages(guild.channel),
        forgetful.client.message(guild.channel, sent.id),
        forgetful.client.message_versions(guild.channel, sent.id),
        forgetful.client.pins(guild.channel),
    ):
        error = await refused(call)
        assert (error.status, error.code) == (403, "missing_permissions")
    # Sending does not need history (Discord's write-only channels).
    assert (await forgetful.client.send_message(guild.channel, "blind")).content == "blind"
    assert await count(node, messages) == 2


async def test_threads_take_send_messages_in_threads(node, owner, make_client) -> None:
    read_only = P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY | P.SEND_MESSAGES_IN_THREADS
    guild = await create_guild(node, owner, everyone=read_only)
    talker = await person(make_client, "talker")
    await join(node, guild, talker)
    thread = await add_channel(
        node, guild.id, type=ChannelType.PUBLIC_THREAD, parent_id=guild.channel_id
    )
    error = await refused(talker.client.send_message(guild.channel, "in the channel"))
    assert (error.status, error.code) == (403, "missing_permissions")
    sent = await talker.client.send_message(str(thread), "in the thread")
    assert sent.channel_id == str(thread) and sent.guild_id == str(guild.id)


async def test_no_messages_in_categories(node, guild, owner) -> None:
    category = await add_channel(node, guild.id, type=ChannelType.GUILD_CATEGORY)
    error = await refused(owner.client.send_message(str(category), "hi"))
    assert (error.status, error.code) == (400, "invalid_channel_type")


async def test_direct_messages(node, make_client, recorded) -> None:
    ann, ben, cat = [await person(make_client, n) for n in ("ann", "ben", "cat")]
    dm = str(await create_dm(node, [ann, ben]))
    sent = await ann.client.send_message(dm, "psst @everyone")
    assert sent.guild_id is None and sent.mention_everyone is False
    assert [m.id for m in await ben.client.messages(dm)] == [sent.id]
    await ben.client.add_reaction(dm, sent.id, "👀")
    await ben.client.pin_message(dm, sent.id)  # any participant may pin in a DM
    error = await refused(cat.client.messages(dm))
    assert (error.status, error.code) == (404, "unknown_channel")
    assert {e.stream for e in recorded} == {f"channel:{dm}"}
    assert types(recorded) == [
        "MESSAGE_CREATE", "MESSAGE_REACTION_ADD", "MESSAGE_UPDATE", "CHANNEL_PINS_UPDATE",
    ]  # fmt: skip


# -- slow mode ------------------------------------------------------------------------------------
async def test_slow_mode_is_enforced_per_member_and_bypassed(
    node, make_client, owner, recorded
) -> None:
    guild = await create_guild(node, owner, slowmode=10)
    alice, bob, modo = [await person(make_client, n) for n in ("alice", "bob", "modo")]
    await join(node, guild, alice)
    await join(node, guild, bob)
    await join(node, guild, modo, await add_role(node, guild.id, P.MANAGE_MESSAGES))

    first = await alice.client.send_message(guild.channel, "first", nonce="a1")
    with pytest.raises(ApiError) as caught:
        await alice.client.send_message(guild.channel, "second")
    error = caught.value
    assert (error.status, error.code) == (429, "slowmode")
    assert 1 <= int(error.headers["retry-after"]) <= 10
    # A retry of the first send is answered with it; a new send with a new nonce must wait.
    assert (await alice.client.send_message(guild.channel, "first", nonce="a1")).id == first.id
    assert (await refused(alice.client.send_message(guild.channel, "x", nonce="a2"))).status == 429
    # Another member, and the same member in another channel, are not held back.
    await bob.client.send_message(guild.channel, "bob")
    other = str(await add_channel(node, guild.id, slowmode=10))
    await alice.client.send_message(other, "elsewhere")
    # Moderators and the owner bypass it.
    for who in (modo, owner):
        await who.client.send_message(guild.channel, "1")
        await who.client.send_message(guild.channel, "2")

    service = node.node.messages
    real_clock = service.clock
    service.clock = lambda: real_clock() + 10_500
    await alice.client.send_message(guild.channel, "after the wait")
    texts = [m.content for m in await owner.client.messages(guild.channel)]
    assert texts == ["after the wait", "2", "1", "2", "1", "bob", "first"]
    assert types(recorded) == ["MESSAGE_CREATE"] * 8  # 7 here, 1 in the other channel


# -- mentions and replies -----------------------------------------------------------------------
async def test_mentions_take_effect_only_where_allowed(node, make_client, owner) -> None:
    guild = await create_guild(node, owner)
    plain, herald, blind = [await person(make_client, n) for n in ("plain", "herald", "blind")]
    outsider = await person(make_client, "outsider")
    await join(node, guild, plain)
    await join(node, guild, herald, await add_role(node, guild.id, P.MENTION_EVERYONE))
    await join(node, guild, blind)
    await overwrite(node, guild.channel_id, blind.uid, kind=MEMBER_OVERWRITE, deny=P.VIEW_CHANNEL)
    quiet_role = await add_role(node, guild.id, mentionable=False)
    loud_role = await add_role(node, guild.id, mentionable=True)

    text = (
        f"@everyone <@{herald.id}> <@!{blind.id}> <@{outsider.id}> <@{herald.id}> "
        f"<@&{quiet_role}> <@&{loud_role}> <@&{guild.id}> <#{guild.channel_id}>"
    )
    by_plain = await plain.client.send_message(guild.channel, text)
    assert by_plain.mention_everyone is False  # no MENTION_EVERYONE
    assert [u.id for u in by_plain.mentions] == [herald.id]  # only who can see the channel
    assert by_plain.mention_roles == [str(loud_role)]  # only the mentionable role

    by_herald = await herald.client.send_message(guild.channel, text)
    assert by_herald.mention_everyone is True
    assert by_herald.mention_roles == [str(quiet_role), str(loud_role)]
    (row,) = await rows(node, select(messages).where(messages.c.id == int(by_herald.id)))
    assert row.mention_channels == [guild.channel_id]

    in_code = await herald.client.send_message(
        guild.channel, f"`@everyone` and ```\n<@{plain.id}> @here\n``` \\@here"
    )
    assert (in_code.mention_everyone, in_code.mentions) == (False, [])

    muted = await herald.client.send_message(
        guild.channel, text, allowed_mentions={"parse": [], "users": [plain.id]}
    )
    assert (muted.mention_everyone, muted.mentions, muted.mention_roles) == (False, [], [])
    named = await herald.client.send_message(
        guild.channel, f"<@{plain.id}> <@{herald.id}>", allowed_mentions={"users": [plain.id]}
    )
    assert [u.id for u in named.mentions] == [plain.id]
    error = await refused(
        herald.client.send_message(
            guild.channel, "x", allowed_mentions={"parse": ["users"], "users": [plain.id]}
        )
    )
    assert error.status == 400


async def test_replies(node, guild, owner, member) -> None:
    parent = await owner.client.send_message(guild.channel, "question")
    reply = await member.client.send_message(guild.channel, "answer", reply_to=parent.id)
    assert reply.type == 19 and reply.message_reference is not None
    assert reply.message_reference.message_id == parent.id
    # The answer quotes what it answers (one level deep), as history does.
    quoted = reply.referenced_message
    assert isinstance(quoted, Message) and (quoted.id, quoted.content) == (parent.id, "question")
    assert quoted.author.id == owner.id and quoted.referenced_message is msgspec.UNSET
    assert parent.referenced_message is msgspec.UNSET  # not a reply
    assert reply.mentions == []  # replied_user defaults to false
    pinging = await member.client.send_message(
        guild.channel,
        "answer",
        reply_to=parent.id,
        allowed_mentions={"replied_user": True},
    )
    assert [u.id for u in pinging.mentions] == [owner.id]
    # The ping survives an edit of the reply.
    edited = await member.client.edit_message(guild.channel, pinging.id, "better answer")
    assert [u.id for u in edited.mentions] == [owner.id]
    assert isinstance(edited.referenced_message, Message)
    # A reply to a reply quotes its parent with the parent's own reference, not its quote.
    nested = await owner.client.send_message(guild.channel, "thanks", reply_to=reply.id)
    assert isinstance(nested.referenced_message, Message)
    assert nested.referenced_message.id == reply.id
    assert nested.referenced_message.message_reference is not None
    assert nested.referenced_message.referenced_message is msgspec.UNSET
    # Once the quoted message is deleted, the quote is null.
    await owner.client.delete_message(guild.channel, parent.id)
    history = {m.id: m for m in await member.client.messages(guild.channel)}
    assert history[reply.id].referenced_message is None
    assert history[nested.id].referenced_message.id == reply.id  # type: ignore[union-attr]

    elsewhere = str(await add_channel(node, guild.id))
    other = await owner.client.send_message(elsewhere, "other channel")
    for target in (other.id, "123", "junk"):
        error = await refused(member.client.send_message(guild.channel, "re", reply_to=target))
        assert (error.status, error.code) == (400, "invalid_reference")
    assert await count(node, messages) == 5  # the deleted parent stays as a tombstone


# -- pins -----------------------------------------------------------------------------------------
async def test_pins(node, guild, owner, member, recorded) -> None:
    first = await member.client.send_message(guild.channel, "first")
    second = await member.client.send_message(guild.channel, "second")
    error = await refused(member.client.pin_message(guild.channel, first.id))
    assert (error.status, error.code) == (403, "missing_permissions")
    recorded.clear()

    await owner.client.pin_message(guild.channel, first.id)
    await owner.client.pin_message(guild.channel, second.id)
    await owner.client.pin_message(guild.channel, second.id)  # already: nothing happens
    pins = await member.client.pins(guild.channel)
    assert [m.id for m in pins] == [second.id, first.id] and all(m.pinned for m in pins)
    assert types(recorded) == ["MESSAGE_UPDATE", "CHANNEL_PINS_UPDATE"] * 2
    assert recorded[1].payload.channel_id == guild.channel
    assert recorded[1].payload.last_pin_timestamp is not None

    recorded.clear()
    await owner.client.unpin_message(guild.channel, second.id)
    assert [m.id for m in await member.client.pins(guild.channel)] == [first.id]
    assert types(recorded) == ["MESSAGE_UPDATE", "CHANNEL_PINS_UPDATE"]
    assert recorded[0].payload.pinned is False
    actions = [r.action for r in await rows(node, select(audit_log).order_by(audit_log.c.id))]
    assert actions == [AuditAction.MESSAGE_PIN] * 2 + [AuditAction.MESSAGE_UNPIN]

    # Deleting a pinned message unpins it.
    recorded.clear()
    await member.client.delete_message(guild.channel, first.id)
    assert await member.client.pins(guild.channel) == []
    assert types(recorded) == ["MESSAGE_DELETE", "CHANNEL_PINS_UPDATE"]
    assert recorded[1].payload.last_pin_timestamp is None


async def test_at_most_50_pins(node, guild, owner, recorded) -> None:
    service = node.node.messages
    for i in range(51):
        sent = await service.send(owner.uid, guild.channel_id, MessageCreate(content=f"p{i}"))
        if i < 50:
            await service.pin(owner.uid, guild.channel_id, int(sent.id))
    recorded.clear()
    error = await refused(owner.client.pin_message(guild.channel, sent.id))
    assert (error.status, error.code) == (400, "max_pins")
    assert recorded == []  # the refused pin announced nothing
    assert len(await owner.client.pins(guild.channel)) == 50
    # Room again after an unpin.
    await owner.client.unpin_message(guild.channel, (await owner.client.pins(guild.channel))[0].id)
    await owner.client.pin_message(guild.channel, sent.id)


# -- reactions ------------------------------------------------------------------------------------
async def test_reactions(node, make_client, guild, owner, member, recorded) -> None:
    lurker = await person(make_client, "lurker")
    await join(node, guild, lurker)
    await overwrite(node, guild.channel_id, lurker.uid, kind=MEMBER_OVERWRITE, deny=P.ADD_REACTIONS)
    sent = await owner.client.send_message(guild.channel, "react to me")
    recorded.clear()

    error = await refused(lurker.client.add_reaction(guild.channel, sent.id, "👍"))
    assert (error.status, error.code) == (403, "missing_permissions")  # a new emoji
    await member.client.add_reaction(guild.channel, sent.id, "👍")
    await lurker.client.add_reaction(guild.channel, sent.id, "👍")  # joining one is fine
    await member.client.add_reaction(guild.channel, sent.id, "👍")  # again: nothing new
    party_cat = await add_emoji(node, guild.id, "party_cat", owner)
    await member.client.add_reaction(guild.channel, sent.id, f"party_cat:{party_cat}")

    seen_by_member = (await member.client.message(guild.channel, sent.id)).reactions
    assert [(r.emoji.id, r.emoji.name, r.count, r.me) for r in seen_by_member] == [
        (None, "👍", 2, True),
        (party_cat, "party_cat", 1, True),
    ]
    seen_by_owner = (await owner.client.messages(guild.channel))[0].reactions
    assert [(r.count, r.me) for r in seen_by_owner] == [(2, False), (1, False)]

    assert types(recorded) == ["MESSAGE_REACTION_ADD"] * 3
    payload = recorded[0].payload
    assert (payload.user_id, payload.message_id, payload.emoji.name) == (member.id, sent.id, "👍")

    recorded.clear()
    await member.client.remove_reaction(guild.channel, sent.id, "👍")
    await member.client.remove_reaction(guild.channel, sent.id, "👍")  # gone already
    error = await refused(
        member.client.remove_reaction(guild.channel, sent.id, "👍", user_id=lurker.id)
    )
    assert (error.status, error.code) == (403, "missing_permissions")
    await owner.client.remove_reaction(guild.channel, sent.id, "👍", user_id=lurker.id)
    assert types(recorded) == ["MESSAGE_REACTION_REMOVE"] * 2
    assert [r.user_id for r in (e.payload for e in recorded)] == [member.id, lurker.id]
    remaining = (await owner.client.message(guild.channel, sent.id)).reactions
    assert [r.emoji.name for r in remaining] == ["party_cat"]


@pytest.mark.parametrize(
    "emoji", ["abc", "a b", "<b>", "👍 x", "party:0", "p:12x", "😀" * 33, "é", ":)"]
)
async def test_reactions_refuse_what_is_not_an_emoji(node, guild, owner, emoji) -> None:
    sent = await owner.client.send_message(guild.channel, "hi")
    error = await refused(owner.client.add_reaction(guild.channel, sent.id, emoji))
    assert (error.status, error.code) == (400, "unknown_emoji")
    assert await count(node, reactions_table) == 0


async def test_reaction_emoji_shapes_accepted(node, guild, owner) -> None:
    sent = await owner.client.send_message(guild.channel, "hi")
    for emoji in ("❤️", "1️⃣", "🇫🇷", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"):
        await owner.client.add_reaction(guild.channel, sent.id, emoji)
    names = [r.emoji.name for r in (await owner.client.message(guild.channel, sent.id)).reactions]
    assert names == ["❤️", "1️⃣", "🇫🇷", "👨‍👩‍👧‍👦", "🏴󠁧󠁢󠁳󠁣󠁴󠁿"]


async def test_who_reacted_is_paginated_by_user_id(node, make_client, guild, owner) -> None:
    sent = await owner.client.send_message(guild.channel, "vote")
    fans = [await person(make_client, f"fan{i}") for i in range(5)]
    for fan in fans:
        await join(node, guild, fan)
        await fan.client.add_reaction(guild.channel, sent.id, "⭐")
    expected = sorted((f.id for f in fans), key=int)

    pages: list[list[str]] = []
    after = None
    while page := await owner.client.reactions(guild.channel, sent.id, "⭐", after=after, limit=2):
        pages.append([u.id for u in page])
        after = page[-1].id
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    name_of = {f.id: f"fan{i}" for i, f in enumerate(fans)}
    everyone = await owner.client.reactions(guild.channel, sent.id, "⭐")  # default limit 25
    assert [u.username for u in everyone] == [name_of[i] for i in expected]
    for limit in (0, 101):
        error = await refused(owner.client.reactions(guild.channel, sent.id, "⭐", limit=limit))
        assert error.status == 400
    assert await owner.client.reactions(guild.channel, sent.id, "🌙") == []


async def test_at_most_20_different_reactions(node, guild, owner) -> None:
    sent = await owner.client.send_message(guild.channel, "many")
    for i in range(20):
        await owner.client.add_reaction(guild.channel, sent.id, chr(0x1F600 + i))
    error = await refused(owner.client.add_reaction(guild.channel, sent.id, chr(0x1F600 + 20)))
    assert (error.status, error.code) == (400, "max_reactions")
    await owner.client.add_reaction(guild.channel, sent.id, chr(0x1F600))  # an existing one


# -- events ------------------------------------------------------------------------------------
async def test_refused_writes_publish_nothing(node, make_client, owner, recorded) -> None:
    guild = await create_guild(node, owner, everyone=MEMBER & ~P.SEND_MESSAGES, slowmode=60)
    talker = await person(make_client, "talker")
    await join(node, guild, talker, await add_role(node, guild.id, P.SEND_MESSAGES))
    sent = await talker.client.send_message(guild.channel, "one")
    recorded.clear()
    calls = [
        talker.client.send_message(guild.channel, "two"),  # slow mode, after the member lock
        talker.client.send_message(guild.channel, "re", reply_to="1"),
        talker.client.pin_message(guild.channel, sent.id),
        talker.client.edit_message(guild.channel, sent.id, ""),
        owner.client.edit_message(guild.channel, sent.id, "not mine"),
        owner.client.add_reaction(guild.channel, sent.id, "nope"),
    ]
    for call in calls:
        await refused(call)
    assert recorded == []
    assert await count(node, messages) == 1 and await count(node, message_versions) == 0
