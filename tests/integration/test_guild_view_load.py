"""GuildView against the REST API: loaded from a real node's database, and kept current by
the events the real services publish, it answers as the API does.

The world (chat_world) is populated further through the SDK: hidden channels, role and
member overwrites, public and private threads, a timeout, a kick, a deleted role, a deleted
channel, a reorder and an ownership transfer. A view loaded before those changes and fed
the guild stream's events must agree with one loaded after them, and both with what each
user can GET.
"""

from __future__ import annotations

from chat_world import PASSWORD, World
from sqlalchemy import select

from miaou.bus import Event
from miaou.chat.permissions import Permission as P
from miaou.chat.tables import channels
from miaou.gateway.guild_view import GuildView
from miaou.ids import now_ms
from miaou.sdk import ApiError, Client

VIEW = str(int(P.VIEW_CHANNEL))


async def _load(node, guild_id: int) -> GuildView:
    async with node.node.db.read() as conn:
        return await GuildView.load(conn, guild_id)


async def _rest_sees(client: Client, channel_id: str) -> bool:
    try:
        await client.channel(channel_id)
    except ApiError as error:
        assert error.status == 404, error
        return False
    return True


async def _compare(world: World, node, views: list[GuildView], also: list[str]) -> int:
    """Every user x channel of the guild (and ``also``, deleted ones): the views agree with
    the API. Returns how many pairs were visible."""
    gid = world.guild["id"]
    async with node.node.db.read() as conn:
        found = await conn.execute(select(channels.c.id).where(channels.c.guild_id == int(gid)))
        channel_ids = sorted({str(c) for c in found.scalars()} | set(also))
    visible = 0
    for name, client in world.clients.items():
        uid = int(world.ids[name])
        member = views[-1].is_member(uid)
        listed = {c["id"] for c in await client.channels(gid)} if member else set()
        seen = {cid for cid in channel_ids if await _rest_sees(client, cid)}
        assert listed <= seen
        for view in views:
            assert view.is_member(uid) == member, name
            for cid in channel_ids:
                assert view.can_view(uid, int(cid), now_ms()) == (cid in seen), (name, cid)
            assert {str(c) for c in view.visible_channels(uid, now_ms())} == seen, name
        visible += len(seen)
    return visible


async def test_loaded_view_agrees_with_the_api(world: World, node) -> None:
    gid, owner, general = world.guild["id"], world["owner"], world.general
    guest = Client(world.url, rate_limit_retries=0)
    world.clients["guest"] = guest
    world.ids["guest"] = (await guest.register("guest-user", PASSWORD)).user.id
    await guest.join((await owner.create_guild_invite(general, max_uses=0))["code"])

    early = await _load(node, int(gid))
    assert early.member_count == 5 and not early.is_member(int(world.ids["banned"]))
    events: list[Event] = []
    node.node.bus.subscribe(events.append)

    # #secret: hidden from @everyone, open to the mod role.
    secret = await owner.create_channel(gid, "secret", permission_overwrites=[
        {"id": gid, "type": 0, "deny": VIEW},
        {"id": world.mod_role, "type": 0, "allow": VIEW},
    ])  # fmt: skip
    # #lounge: open, but not to the plain member (a member overwrite).
    lounge = await owner.create_channel(gid, "lounge")
    await owner.put_overwrite(lounge["id"], world.ids["member"], type=1, deny=int(P.VIEW_CHANNEL))
    # #library: hidden from @everyone, open to "readers", held by the guest, then deleted.
    library = await owner.create_channel(gid, "library")
    await owner.put_overwrite(library["id"], gid, type=0, deny=int(P.VIEW_CHANNEL))
    readers = await owner.create_role(gid, "readers")
    await owner.put_overwrite(library["id"], readers["id"], type=0, allow=int(P.VIEW_CHANNEL))
    await owner.add_member_role(gid, world.ids["guest"], readers["id"])
    # Threads: public in general, private in general (member, then mod added), one in secret.
    public = await world["member"].start_thread(general, "open talk")
    private = await world["member"].start_thread(general, "plans", type=12)
    await world["member"].join_thread(private["id"], world.ids["mod"])
    lonely = await world["guest"].start_thread(general, "diary", type=12)
    in_secret = await world["mod"].start_thread(secret["id"], "mods only")
    doomed = await owner.create_channel(gid, "doomed")
    doomed_thread = await world["member"].start_thread(doomed["id"], "doomed talk")

    early_ids = [general, secret["id"], lounge["id"], library["id"], public["id"],
                 private["id"], lonely["id"], in_secret["id"], doomed["id"],
                 doomed_thread["id"]]  # fmt: skip
    for event in events:
        if event.stream == f"guild:{gid}":
            early.apply(event.type, event.payload)
    assert await _compare(world, node, [early, await _load(node, int(gid))], early_ids) > 20

    # Rules change: a role loses what it gave, a member is timed out, another kicked, a role
    # deleted, a channel deleted with its thread, channels reordered, ownership moves.
    del events[:]
    await owner.put_overwrite(lounge["id"], world.ids["member"], type=1)  # now neutral
    await owner.update_member(gid, world.ids["mod"],
                              communication_disabled_until=now_ms() + 3_600_000)  # fmt: skip
    await owner.update_role(gid, world.mod_role, permissions=str(int(P.MANAGE_THREADS)))
    await owner.delete_role(gid, readers["id"])
    await owner.delete_channel(doomed["id"])
    await owner.reorder_channels(gid, [{"id": lounge["id"], "position": 0},
                                       {"id": secret["id"], "position": 9}])  # fmt: skip
    await owner.kick(gid, world.ids["member"])
    await owner.transfer_guild(gid, world.ids["admin"])
    await world["admin"].put_overwrite(
        secret["id"], world.ids["admin"], type=1, deny=int(P.VIEW_CHANNEL)
    )  # the owner ignores it
    for event in events:
        if event.stream == f"guild:{gid}":
            early.apply(event.type, event.payload)
    fresh = await _load(node, int(gid))
    assert not fresh.is_member(int(world.ids["member"])) and fresh.owner_id == int(
        world.ids["admin"])  # fmt: skip
    assert await _compare(world, node, [early, fresh], early_ids) > 10


async def test_a_missing_guild_loads_empty(node) -> None:
    view = await _load(node, 123456789)
    assert view.deleted and view.member_count == 0
