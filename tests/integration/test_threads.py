"""Threads: from a message or standalone, private threads, forum posts with tags, members,
archiving by hand and by inactivity, locking."""

from __future__ import annotations

from chat_world import World, expect

from miaou.bus import Event
from miaou.chat.permissions import Permission as P
from miaou.ids import id_time_ms
from miaou.server import RunningNode


async def test_thread_from_a_message(world: World) -> None:
    member, general = world["member"], world.general
    starter = await member.send_message(general, "shall we talk about naps?")
    thread = await member.start_thread(general, "Naps", message_id=starter.id)
    assert thread["type"] == 11 and thread["parent_id"] == general
    assert thread["thread_metadata"]["archived"] is False
    await expect(400, "thread_exists", member.start_thread(general, "again", message_id=starter.id))
    reply = await world["owner"].send_message(thread["id"], "I love naps")
    assert reply.channel_id == thread["id"]
    history = await member.messages(thread["id"])
    assert [m.content for m in history] == ["I love naps"]
    assert [m["user_id"] for m in await member.thread_members(thread["id"])] == [
        world.ids["member"]
    ]
    await expect(404, "unknown_channel", world["outsider"].send_message(thread["id"], "hi"))


async def test_a_message_names_the_thread_started_from_it(
    world: World, node: RunningNode, recorded: list[Event]
) -> None:
    member, general = world["member"], world.general
    starter = await member.send_message(general, "a thread about naps?")
    plain = await member.send_message(general, "no thread here")
    assert starter.thread is None
    thread = await member.start_thread(general, "Naps", message_id=starter.id)
    # Those who have the starter on screen learn of it: MESSAGE_UPDATE in the parent.
    (update,) = [e for e in recorded if e.type == "MESSAGE_UPDATE"]
    assert update.stream == f"guild:{world.guild['id']}"
    assert update.payload.id == starter.id and update.payload.thread.id == thread["id"]
    for reader in (member, world["owner"]):
        listed = {m.id: m for m in await reader.messages(general)}
        assert listed[starter.id].thread is not None
        assert listed[starter.id].thread["id"] == thread["id"]
        assert listed[starter.id].thread["name"] == "Naps"
        assert listed[plain.id].thread is None
    fetched = await member.message(general, starter.id)
    assert fetched.thread is not None and fetched.thread["parent_id"] == general


async def test_thread_permissions_follow_the_parent(world: World) -> None:
    gid, general = world.guild["id"], world.general
    thread = await world["member"].start_thread(general, "open talk")
    # Without SEND_MESSAGES_IN_THREADS one may still read, but not post, in threads.
    await world["owner"].put_overwrite(
        general, gid, type=0, deny=int(P.SEND_MESSAGES_IN_THREADS | P.CREATE_PRIVATE_THREADS)
    )
    await expect(403, "missing_permissions", world["member"].send_message(thread["id"], "x"))
    await world["owner"].put_overwrite(general, world.mod_role, type=0,
                                       allow=int(P.SEND_MESSAGES_IN_THREADS))  # fmt: skip
    await world["mod"].send_message(thread["id"], "a role allow beats the @everyone deny")
    await expect(403, "missing_permissions",
                 world["member"].start_thread(general, "t", type=12))  # fmt: skip


async def test_private_threads_are_for_members(world: World) -> None:
    general = world.general
    secret = await world["member"].start_thread(general, "secret plans", type=12)
    assert secret["type"] == 12
    await expect(404, "unknown_channel", world["outsider"].channel(secret["id"]))
    await expect(404, "unknown_channel", world["banned"].channel(secret["id"]))
    other = world["owner"]  # the owner sees everything (MANAGE_THREADS through ownership)
    assert (await other.channel(secret["id"]))["id"] == secret["id"]
    listed = [t["id"] for t in await world["mod"].threads(general)]
    assert secret["id"] not in listed
    await world["member"].join_thread(secret["id"], world.ids["mod"])
    assert secret["id"] in [t["id"] for t in await world["mod"].threads(general)]
    await world["mod"].send_message(secret["id"], "in")


async def test_archive_lock_and_reopen(world: World, node) -> None:
    thread = await world["member"].start_thread(world.general, "short-lived",
                                                auto_archive_duration=60)  # fmt: skip
    await expect(
        400,
        "invalid_input",
        world["member"].start_thread(world.general, "x", auto_archive_duration=61),
    )
    message = await world["member"].send_message(thread["id"], "last words")
    later = id_time_ms(int(message.id)) + 61 * 60_000
    assert await node.node.threads.archive_idle(now=later - 2 * 60_000) == 0
    assert await node.node.threads.archive_idle(now=later) == 1
    archived = await world["member"].channel(thread["id"])
    assert archived["thread_metadata"]["archived"] is True
    assert thread["id"] in [
        t["id"] for t in await world["member"].threads(world.general, archived=True)
    ]
    # A message reopens it; archived again, its creator reopens it by hand.
    await world["owner"].send_message(thread["id"], "still here")
    assert (await world["member"].channel(thread["id"]))["thread_metadata"]["archived"] is False
    await world["member"].update_channel(thread["id"], archived=True)
    reopened = await world["member"].update_channel(thread["id"], archived=False)
    assert reopened["thread_metadata"]["archived"] is False
    # A moderator locks it; then only moderators move it.
    await expect(
        403, "missing_permissions", world["member"].update_channel(thread["id"], locked=True)
    )
    await world["admin"].update_channel(thread["id"], locked=True)
    await expect(403, "thread_locked", world["member"].send_message(thread["id"], "x"))
    await expect(403, "thread_locked", world["member"].update_channel(thread["id"], name="y"))
    await expect(400, "invalid_input", world["admin"].update_channel(thread["id"], topic="no"))


async def test_forum_posts_with_tags(world: World) -> None:
    gid = world.guild["id"]
    forum = await world["owner"].create_channel(gid, "Help Desk", type=15)
    forum = await world["owner"].update_channel(
        forum["id"], available_tags=[{"name": "bug"}, {"name": "question"}]
    )
    tags = {t["name"]: t["id"] for t in forum["available_tags"]}
    post = await world["member"].start_thread(
        forum["id"], "Printer on fire", message={"content": "help!"},
        applied_tags=[tags["bug"]],
    )  # fmt: skip
    assert post["applied_tags"] == [tags["bug"]] and post["parent_id"] == forum["id"]
    assert [m.content for m in await world["member"].messages(post["id"])] == ["help!"]
    await expect(400, "invalid_input",
                 world["member"].start_thread(forum["id"], "no message"))  # fmt: skip
    await expect(400, "invalid_input",
                 world["member"].start_thread(forum["id"], "bad tag", message={"content": "x"},
                                              applied_tags=["123"]))  # fmt: skip
    await expect(
        400,
        "invalid_content",
        world["member"].start_thread(forum["id"], "empty", message={"content": "  "}),
    )
    titles = [t["name"] for t in await world["member"].threads(forum["id"])]
    assert titles == ["Printer on fire"]  # refused posts left nothing behind
    await expect(
        400,
        "invalid_input",
        world["owner"].update_channel(world.general, available_tags=[{"name": "x"}]),
    )


async def test_thread_membership(world: World) -> None:
    thread = await world["member"].start_thread(world.general, "club")
    await world["mod"].join_thread(thread["id"])
    await world["mod"].leave_thread(thread["id"])
    await world["mod"].join_thread(thread["id"])
    await expect(403, "missing_permissions",
                 world["member"].leave_thread(thread["id"], world.ids["mod"]))  # fmt: skip
    await world["owner"].leave_thread(thread["id"], world.ids["mod"])
    people = {m["user_id"] for m in await world["member"].thread_members(thread["id"])}
    assert people == {world.ids["member"]}
