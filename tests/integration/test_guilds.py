"""Guilds, channels, roles, members, invites and bans through the API: the outcomes the
documentation promises for owner / admin / moderator / member / outsider / banned."""

from __future__ import annotations

from chat_world import PASSWORD, World, expect

from miaou.chat.permissions import DEFAULT_EVERYONE
from miaou.chat.permissions import Permission as P


async def test_new_guild_has_owner_everyone_role_and_general(client) -> None:
    await client.register("founder", PASSWORD)
    guild = await client.create_guild("  Night Owls  ", description="hoot")
    assert guild["name"] == "Night Owls"
    me = await client.me()
    assert guild["owner_id"] == me.id
    [everyone] = guild["roles"]
    assert everyone["id"] == guild["id"] and everyone["name"] == "@everyone"
    assert int(everyone["permissions"]) == int(DEFAULT_EVERYONE)
    names = [(c["name"], c["type"]) for c in guild["channels"]]
    assert names == [("Text Channels", 4), ("general", 0)]
    general = guild["channels"][1]
    assert guild["system_channel_id"] == general["id"]
    assert general["parent_id"] == guild["channels"][0]["id"]
    assert [g["id"] for g in await client.my_guilds()] == [guild["id"]]


async def test_guild_name_validated(client) -> None:
    await client.register("namer", PASSWORD)
    await expect(400, "invalid_input", client.create_guild("x"))
    await expect(400, "invalid_input", client.create_guild("y" * 101))
    assert await client.my_guilds() == []


async def test_reading_a_guild(world: World) -> None:
    gid = world.guild["id"]
    for name in ("owner", "admin", "mod", "member"):
        assert (await world[name].guild(gid))["id"] == gid
    for name in ("outsider", "banned"):
        await expect(404, "unknown_guild", world[name].guild(gid))
    assert (await world["member"].guild(gid))["member_count"] == 4


async def test_updating_a_guild_needs_manage_guild(world: World, node) -> None:
    gid = world.guild["id"]
    await expect(403, "missing_permissions", world["member"].update_guild(gid, name="Mine"))
    await expect(404, "unknown_guild", world["outsider"].update_guild(gid, name="Mine"))
    updated = await world["mod"].update_guild(gid, name="Cattery II", reason="rebrand")
    assert updated["name"] == "Cattery II"
    log = await world["owner"].audit_log(gid, action_type=1)
    assert log[0]["action"] == "GUILD_UPDATE" and log[0]["reason"] == "rebrand"
    assert log[0]["changes"]["name"] == {"old": "The Cattery", "new": "Cattery II"}
    assert log[0]["actor_id"] == world.ids["mod"]


async def test_deleting_and_transferring_are_for_the_owner(world: World) -> None:
    gid = world.guild["id"]
    await expect(403, "owner_only", world["admin"].delete_guild(gid))
    await expect(403, "owner_only", world["admin"].transfer_guild(gid, world.ids["admin"]))
    await expect(404, "unknown_member",
                 world["owner"].transfer_guild(gid, world.ids["outsider"]))  # fmt: skip
    moved = await world["owner"].transfer_guild(gid, world.ids["member"])
    assert moved["owner_id"] == world.ids["member"]
    await expect(403, "owner_only", world["owner"].delete_guild(gid))
    await world["member"].delete_guild(gid)
    await expect(404, "unknown_guild", world["member"].guild(gid))


async def test_channels_create_update_delete(world: World) -> None:
    gid = world.guild["id"]
    await expect(403, "missing_permissions", world["member"].create_channel(gid, "nope"))
    channel = await world["mod"].create_channel(gid, "Cat Pictures", topic="meow",
                                                rate_limit_per_user=5)  # fmt: skip
    assert channel["name"] == "cat-pictures" and channel["rate_limit_per_user"] == 5
    voice = await world["mod"].create_channel(gid, "Lounge", type=2, bitrate=64000)
    assert voice["name"] == "Lounge" and voice["bitrate"] == 64000
    await expect(400, "invalid_input",
                 world["mod"].create_channel(gid, "bad", rate_limit_per_user=21601))  # fmt: skip
    await expect(400, "invalid_input", world["mod"].create_channel(gid, "bad", type=1))
    await expect(400, "invalid_input",
                 world["mod"].create_channel(gid, "bad", parent_id=world.general))  # fmt: skip
    await expect(400, "invalid_input", world["mod"].create_channel(gid, "bad", bitrate=64000))
    updated = await world["mod"].update_channel(channel["id"], topic="purr", nsfw=True)
    assert (updated["topic"], updated["nsfw"]) == ("purr", True)
    await expect(
        403, "missing_permissions", world["member"].update_channel(channel["id"], topic="x")
    )
    await world["mod"].delete_channel(channel["id"])
    await expect(404, "unknown_channel", world["mod"].channel(channel["id"]))
    actions = [e["action"] for e in await world["owner"].audit_log(gid)]
    assert actions[:3] == ["CHANNEL_DELETE", "CHANNEL_UPDATE", "CHANNEL_CREATE"]


async def test_private_channel_is_invisible_without_view_channel(world: World) -> None:
    gid = world.guild["id"]
    secret = await world["owner"].create_channel(gid, "staff")
    await world["owner"].put_overwrite(secret["id"], gid, type=0, deny=int(P.VIEW_CHANNEL))
    await world["owner"].put_overwrite(secret["id"], world.mod_role, type=0,
                                       allow=int(P.VIEW_CHANNEL))  # fmt: skip
    member_sees = {c["id"] for c in await world["member"].channels(gid)}
    mod_sees = {c["id"] for c in await world["mod"].channels(gid)}
    assert secret["id"] not in member_sees and world.general in member_sees
    assert secret["id"] in mod_sees
    await expect(404, "unknown_channel", world["member"].channel(secret["id"]))
    await expect(404, "unknown_channel", world["outsider"].channel(secret["id"]))
    assert (await world["admin"].channel(secret["id"]))["id"] == secret["id"]
    # A member-level allow beats the @everyone deny.
    await world["owner"].put_overwrite(secret["id"], world.ids["member"], type=1,
                                       allow=int(P.VIEW_CHANNEL))  # fmt: skip
    assert (await world["member"].channel(secret["id"]))["name"] == "staff"


async def test_overwrites_need_manage_roles_and_held_permissions(world: World) -> None:
    gid = world.guild["id"]
    await expect(
        403,
        "missing_permissions",
        world["member"].put_overwrite(world.general, gid, type=0, deny=int(P.SEND_MESSAGES)),
    )
    # mod has MANAGE_ROLES but not MENTION_EVERYONE: cannot hand it out.
    await expect(403, "permissions_not_held",
                 world["mod"].put_overwrite(world.general, world.ids["member"], type=1,
                                            allow=int(P.MENTION_EVERYONE)))  # fmt: skip
    await world["mod"].put_overwrite(world.general, world.ids["member"], type=1,
                                     deny=int(P.SEND_MESSAGES))  # fmt: skip
    channel = await world["member"].channel(world.general)
    assert channel["permission_overwrites"] == [
        {"id": world.ids["member"], "type": 1, "allow": "0", "deny": str(int(P.SEND_MESSAGES))}
    ]
    await expect(
        400,
        "invalid_input",
        world["owner"].put_overwrite(world.general, world.ids["outsider"], type=1),
    )
    await world["mod"].delete_overwrite(world.general, world.ids["member"])
    await expect(404, "unknown_overwrite",
                 world["mod"].delete_overwrite(world.general, world.ids["member"]))  # fmt: skip


async def test_role_hierarchy(world: World) -> None:
    gid = world.guild["id"]
    await expect(403, "missing_permissions", world["member"].create_role(gid, "x"))
    low = await world["mod"].create_role(gid, "helper", permissions=int(P.KICK_MEMBERS))
    # mod cannot edit its own role or the admin role above it...
    await expect(403, "role_hierarchy", world["mod"].update_role(gid, world.mod_role, name="m"))
    await expect(403, "role_hierarchy", world["mod"].delete_role(gid, world.admin_role))
    # ... nor grant what it lacks, nor give itself a higher role.
    await expect(
        403,
        "permissions_not_held",
        world["mod"].create_role(gid, "boss", permissions=int(P.ADMINISTRATOR)),
    )
    await expect(
        403, "role_hierarchy", world["mod"].add_member_role(gid, world.ids["mod"], world.admin_role)
    )
    await world["mod"].add_member_role(gid, world.ids["member"], low["id"])
    assert low["id"] in (await world["member"].member(gid, world.ids["member"]))["roles"]
    await expect(400, "everyone_role", world["owner"].delete_role(gid, gid))
    await world["admin"].delete_role(gid, low["id"])
    assert low["id"] not in [r["id"] for r in await world["member"].roles(gid)]


async def test_role_events_keep_a_copy_of_the_roles_current(world: World, recorded) -> None:
    """Creating or deleting a role moves the roles above it by one: each moved role gets
    GUILD_ROLE_UPDATE, so a snapshot plus the events equals a fresh read."""
    gid = world.guild["id"]
    copy = {r["id"]: r for r in await world["owner"].roles(gid)}
    recorded.clear()
    first = await world["owner"].create_role(gid, "first")
    await world["owner"].create_role(gid, "second")
    await world["owner"].delete_role(gid, first["id"])
    for event in recorded:
        if event.type in ("GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE"):
            copy[event.payload["role"]["id"]] = event.payload["role"]
        elif event.type == "GUILD_ROLE_DELETE":
            del copy[event.payload["role_id"]]
    assert copy == {r["id"]: r for r in await world["owner"].roles(gid)}
    assert world.admin_role in copy  # a role of the world, moved twice on the way


async def test_kick_and_ban_follow_the_hierarchy(world: World) -> None:
    gid = world.guild["id"]
    await expect(403, "missing_permissions", world["member"].kick(gid, world.ids["mod"]))
    await expect(403, "target_hierarchy", world["mod"].kick(gid, world.ids["admin"]))
    await expect(403, "target_is_owner", world["admin"].ban(gid, world.ids["owner"]))
    await expect(403, "target_is_self", world["mod"].kick(gid, world.ids["mod"]))
    # The reason travels URL-encoded (Discord's rule): any text, "%" included, survives.
    reason = "spam 🐟 100% sûr"
    await world["mod"].kick(gid, world.ids["member"], reason=reason)
    await expect(404, "unknown_guild", world["member"].guild(gid))
    entry = (await world["owner"].audit_log(gid, action_type=20))[0]
    assert (entry["target_id"], entry["reason"]) == (world.ids["member"], reason)


async def test_ban_removes_access_at_once_and_blocks_rejoining(world: World) -> None:
    gid = world.guild["id"]
    invite = await world["owner"].create_guild_invite(world.general)
    await world["mod"].ban(gid, world.ids["member"], reason="raid")
    await expect(404, "unknown_channel", world["member"].channel(world.general))
    await expect(403, "banned", world["member"].join(invite["code"]))
    bans = {b["user"]["id"]: b["reason"] for b in await world["mod"].bans(gid)}
    assert bans == {world.ids["banned"]: "test", world.ids["member"]: "raid"}
    await expect(404, "unknown_guild", world["member"].bans(gid))  # not a member now
    await world["mod"].unban(gid, world.ids["member"])
    await world["member"].join(invite["code"])
    assert (await world["member"].guild(gid))["id"] == gid
    await expect(403, "missing_permissions", world["member"].bans(gid))
    await expect(404, "unknown_ban", world["mod"].unban(gid, world.ids["member"]))


async def test_invites(world: World) -> None:
    gid = world.guild["id"]
    one_seat = await world["member"].create_guild_invite(world.general, max_uses=1)
    preview = await world["outsider"].invite_preview(one_seat["code"])
    assert (preview["guild_name"], preview["channel_name"]) == ("The Cattery", "general")
    await world["outsider"].join(one_seat["code"])
    await expect(404, "unknown_invite", world["banned"].invite_preview(one_seat["code"]))
    await expect(403, "missing_permissions", world["member"].guild_invites(gid))
    codes = [i["code"] for i in await world["mod"].guild_invites(gid)]
    assert one_seat["code"] in codes
    await expect(
        400, "invalid_input", world["member"].create_guild_invite(world.general, max_age=10**7)
    )
    await world["mod"].revoke_guild_invite(codes[0])


async def test_nicknames_and_timeouts(world: World) -> None:
    gid = world.guild["id"]
    me = await world["member"].update_member(gid, "@me", nick="Kitty")
    assert me["nick"] == "Kitty"
    await expect(403, "missing_permissions",
                 world["member"].update_member(gid, world.ids["mod"], nick="x"))  # fmt: skip
    await world["mod"].update_member(gid, world.ids["member"], nick=None)
    await expect(403, "target_is_admin",
                 world["owner"].update_member(gid, world.ids["admin"],
                                              communication_disabled_until=2**41))  # fmt: skip


async def test_leaving(world: World) -> None:
    gid = world.guild["id"]
    await expect(400, "owner_cannot_leave", world["owner"].leave_guild(gid))
    await world["member"].leave_guild(gid)
    assert gid not in [g["id"] for g in await world["member"].my_guilds()]
    members = [m["user"]["id"] for m in await world["owner"].members(gid)]
    assert world.ids["member"] not in members and len(members) == 3


async def test_direct_messages(make_client) -> None:
    alice, bob, carol = make_client(), make_client(), make_client()
    a = (await alice.register("dm-alice", PASSWORD)).user.id
    b = (await bob.register("dm-bob", PASSWORD)).user.id
    c = (await carol.register("dm-carol", PASSWORD)).user.id
    dm = await alice.open_dm(b)
    assert dm["type"] == 1 and dm["guild_id"] is None
    assert sorted(u["id"] for u in dm["recipients"]) == sorted([a, b])
    assert (await bob.open_dm(a))["id"] == dm["id"]  # the same DM both ways
    await expect(404, "unknown_channel", carol.channel(dm["id"]))
    assert (await bob.channel(dm["id"]))["id"] == dm["id"]
    group = await alice.create_group_dm([b, c], name="trio")
    assert group["type"] == 3 and group["owner_id"] == a and group["name"] == "trio"
    assert {d["id"] for d in await carol.my_dms()} == {group["id"]}
    await expect(400, "invalid_input", alice.open_dm(a))
    await expect(404, "unknown_user", alice.open_dm("12345"))
    await expect(400, "max_recipients", alice.create_group_dm([str(10**6 + i) for i in range(10)]))
