"""Custom guild emoji over HTTP, through the SDK, against a real node; and reactions that use
them. Guilds and permissions are set up with SQL (``chat_fixtures``); images are made with
Pillow here.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import os
import time
from typing import Any

import httpx
import pytest
from chat_fixtures import (
    MEMBER,
    MEMBER_OVERWRITE,
    GuildFixture,
    P,
    add_emoji,
    add_role,
    count,
    create_dm,
    create_guild,
    join,
    overwrite,
    person,
)
from chat_world import expect
from node_marks import NO_RATE_LIMITS
from PIL import Image

from miaou.bus import Event
from miaou.chat.tables import guild_emojis
from miaou.sdk import ApiError
from miaou.server import RunningNode

pytestmark = NO_RATE_LIMITS


# -- images ------------------------------------------------------------------------------------
def still(fmt: str = "PNG", size: tuple[int, int] = (32, 32), color: int = 0) -> bytes:
    out = io.BytesIO()
    mode = "RGB" if fmt == "JPEG" else "RGBA"
    Image.new(mode, size, (200, color % 256, 40)).save(out, fmt)
    return out.getvalue()


def animation(fmt: str = "GIF") -> bytes:
    frames = [Image.new("RGB", (24, 24), (i * 60, 0, 0)) for i in range(4)]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=80, loop=0)
    return out.getvalue()


def data_uri(data: bytes, claimed: str = "image/png") -> str:
    return f"data:{claimed};base64,{base64.b64encode(data).decode()}"


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def gid(guild: GuildFixture) -> str:
    return str(guild.id)


def blob_exists(node: RunningNode, data: bytes) -> bool:
    return node.node.emojis.blobs.path(hashlib.sha256(data).hexdigest()).exists()


# -- CRUD, events, audit -----------------------------------------------------------------------
async def test_create_read_rename_delete(node, guild, owner, recorded) -> None:
    created = await owner.client.create_emoji(gid(guild), "party_cat", still(), reason="fun")
    assert created == {
        "id": created["id"], "name": "party_cat", "animated": False,
        "user": created["user"], "roles": [], "require_colons": True, "managed": False,
        "available": True,
    }  # fmt: skip
    assert (created["user"]["id"], created["user"]["username"]) == (owner.id, "owner")
    assert await owner.client.emojis(gid(guild)) == [created]
    assert await owner.client.emoji(gid(guild), created["id"]) == created

    renamed = await owner.client.edit_emoji(
        gid(guild), created["id"], name="partier_cat", reason="better"
    )
    assert renamed == {**created, "name": "partier_cat"}
    assert await owner.client.emojis(gid(guild)) == [renamed]
    # The same name again changes nothing: no event, no audit entry.
    assert await owner.client.edit_emoji(gid(guild), created["id"], name="partier_cat") == renamed

    await owner.client.delete_emoji(gid(guild), created["id"], reason="tidy")
    assert await owner.client.emojis(gid(guild)) == []
    await expect(404, "unknown_emoji", owner.client.emoji(gid(guild), created["id"]))
    await expect(404, "unknown_emoji", owner.client.emoji_image(created["id"]))
    await expect(404, "unknown_emoji", owner.client.delete_emoji(gid(guild), created["id"]))

    assert types(recorded) == ["GUILD_EMOJIS_UPDATE"] * 3
    assert {e.stream for e in recorded} == {f"guild:{guild.id}"}
    lists = [[(e.id, e.name) for e in event.payload.emojis] for event in recorded]
    assert lists == [[(created["id"], "party_cat")], [(created["id"], "partier_cat")], []]
    assert {event.payload.guild_id for event in recorded} == {gid(guild)}

    log = await owner.client.audit_log(gid(guild))
    emoji_entries = [e for e in log if e["action"].startswith("EMOJI_")]
    assert [(e["action"], e["target_id"], e["actor_id"], e["reason"]) for e in emoji_entries] == [
        ("EMOJI_DELETE", created["id"], owner.id, "tidy"),
        ("EMOJI_UPDATE", created["id"], owner.id, "better"),
        ("EMOJI_CREATE", created["id"], owner.id, "fun"),
    ]
    assert [e["changes"] for e in emoji_entries] == [
        {"name": {"old": "partier_cat", "new": None}},
        {"name": {"old": "party_cat", "new": "partier_cat"}},
        {"name": {"old": None, "new": "party_cat"}},
    ]
    filtered = await owner.client.audit_log(gid(guild), action_type=60)
    assert [e["action"] for e in filtered] == ["EMOJI_CREATE"]
    assert not blob_exists(node, still())  # the image went with its last emoji


async def test_duplicate_names_are_allowed(node, guild, owner) -> None:
    one = await owner.client.create_emoji(gid(guild), "cat", still(color=1))
    two = await owner.client.create_emoji(gid(guild), "cat", still(color=2))
    assert one["id"] != two["id"]
    assert [e["id"] for e in await owner.client.emojis(gid(guild))] == [one["id"], two["id"]]


async def test_shared_image_stays_while_an_emoji_names_it(node, guild, owner) -> None:
    image = still(color=9)
    one = await owner.client.create_emoji(gid(guild), "one", image)
    two = await owner.client.create_emoji(gid(guild), "two", image)
    await owner.client.delete_emoji(gid(guild), one["id"])
    assert (await owner.client.emoji_image(two["id"])).content == image
    await owner.client.delete_emoji(gid(guild), two["id"])
    assert not blob_exists(node, image)


async def test_images_share_the_media_store_with_attachments(node, make_client, owner) -> None:
    guild = await create_guild(node, owner, everyone=MEMBER | P.ATTACH_FILES)
    image = still(color=77)
    emoji = await owner.client.create_emoji(gid(guild), "shared", image)
    await owner.client.send_message(guild.channel, files=[("same.png", image)])
    # The attachment still names the file: deleting the emoji leaves it.
    await owner.client.delete_emoji(gid(guild), emoji["id"])
    assert blob_exists(node, image)

    # A deleted guild's emoji rows go with it; the hourly collection takes their images.
    lone = still(color=78)
    await owner.client.create_emoji(gid(guild), "lone", lone)
    blobs = node.node.messages.blobs
    old = time.time() - 7200
    os.utime(blobs.path(hashlib.sha256(lone).hexdigest()), (old, old))
    await blobs.collect_garbage(node.node.db)
    assert blob_exists(node, lone)  # an emoji names it: no attachment needed
    await owner.client.delete_guild(gid(guild))
    await blobs.collect_garbage(node.node.db)
    assert not blob_exists(node, lone)


# -- images ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("make", "content_type", "animated"),
    [
        (lambda: still("PNG"), "image/png", False),
        (lambda: still("JPEG"), "image/jpeg", False),
        (lambda: still("GIF"), "image/gif", False),
        (lambda: still("WEBP"), "image/webp", False),
        (lambda: animation("GIF"), "image/gif", True),
        (lambda: animation("WEBP"), "image/webp", True),
        (lambda: animation("PNG"), "image/png", True),  # APNG
    ],
    ids=["png", "jpeg", "gif", "webp", "animated-gif", "animated-webp", "apng"],
)
async def test_image_served_back_as_sent(
    node, make_client, guild, owner, make: Any, content_type: str, animated: bool
) -> None:
    data = make()
    # The URI claims a type the bytes do not have: the bytes decide.
    claimed = "image/jpeg" if content_type != "image/jpeg" else "image/png"
    created = await owner.client.create_emoji(gid(guild), "pic", data_uri(data, claimed))
    assert created["animated"] is animated

    stranger = await person(make_client, "stranger")  # in no guild: still sees the image
    for path_id in (created["id"], f"{created['id']}.png"):
        response = await stranger.client.emoji_image(path_id)
        assert response.content == data
        assert response.headers["content-type"] == content_type
        assert response.headers["cache-control"] == "private, max-age=86400"
        assert response.headers["etag"] == f'"{hashlib.sha256(data).hexdigest()}"'
        assert response.headers["x-content-type-options"] == "nosniff"
    async with httpx.AsyncClient(base_url=node.url) as anonymous:
        assert (await anonymous.get(f"/api/v1/emojis/{created['id']}")).status_code == 401


def _noise_png(side: int) -> bytes:
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(out, "PNG")
    return out.getvalue()


BAD_IMAGES: list[tuple[str, Any, str]] = [
    ("not a data URI", lambda: "hello", "invalid_image"),
    ("URL", lambda: "https://example.com/cat.png", "invalid_image"),
    ("not base64", lambda: "data:image/png;charset=utf-8,abc", "invalid_image"),
    ("bad base64", lambda: "data:image/png;base64,@@@@", "invalid_image"),
    ("empty", lambda: "data:image/png;base64,", "invalid_image"),
    ("text", lambda: data_uri(b"just some text, not a picture"), "invalid_image"),
    ("svg", lambda: data_uri(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
     "invalid_image"),
    ("truncated png", lambda: data_uri(_noise_png(64)[:200]), "invalid_image"),
    # About 300 KiB: over the emoji limit, well under the 1 MiB request limit.
    ("over 256 KiB", lambda: data_uri(_noise_png(320)), "image_too_large"),
    ("over 4096 px", lambda: data_uri(still(size=(4097, 1))), "image_too_large"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("image", "code"), [b[1:] for b in BAD_IMAGES], ids=[b[0] for b in BAD_IMAGES]
)
async def test_bad_images_refused(node, guild, owner, image: Any, code: str) -> None:
    uri = image()
    with pytest.raises(ApiError) as caught:
        await owner.client.create_emoji(gid(guild), "pic", uri)
    error = caught.value
    assert (error.status, error.code, list(error.errors)) == (400, code, ["image"])
    assert await count(node, guild_emojis) == 0
    assert [p for p in node.node.emojis.blobs.root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("name", ["a", "x" * 33, "party cat", "café", "a-b", "", ":cat:"])
async def test_bad_names_refused(node, guild, owner, name: str) -> None:
    await expect(400, "invalid_input", owner.client.create_emoji(gid(guild), name, still()))
    assert await count(node, guild_emojis) == 0
    ok = await owner.client.create_emoji(gid(guild), "ok", still())
    await expect(400, "invalid_input", owner.client.edit_emoji(gid(guild), ok["id"], name=name))
    assert (await owner.client.emoji(gid(guild), ok["id"]))["name"] == "ok"


async def test_name_bounds_and_roles(node, guild, owner) -> None:
    for name in ("ab", "A_" + "9" * 30):
        assert (await owner.client.create_emoji(gid(guild), name, still()))["name"] == name
    created = await owner.client.create_emoji(gid(guild), "with_roles", still(), roles=[])
    await expect(
        400, "invalid_input", owner.client.create_emoji(gid(guild), "r", still(), roles=["1"])
    )
    await expect(
        400, "invalid_input", owner.client.edit_emoji(gid(guild), created["id"], roles=["1"])
    )
    await expect(400, None, owner.client.create_emoji(gid(guild), "x", still(), colour="red"))


async def test_at_most_50_static_and_50_animated(node, guild, owner) -> None:
    for i in range(50):
        await add_emoji(node, guild.id, f"static{i}", owner)
    refused = still(color=77)
    await expect(400, "max_emojis", owner.client.create_emoji(gid(guild), "one_more", refused))
    assert not blob_exists(node, refused)  # stored while it was checked, then removed
    for i in range(49):
        await add_emoji(node, guild.id, f"moving{i}", owner, animated=True)
    await owner.client.create_emoji(gid(guild), "fiftieth", animation())
    await expect(
        400, "max_emojis", owner.client.create_emoji(gid(guild), "again", animation("WEBP"))
    )
    assert await count(node, guild_emojis) == 100


async def test_the_limit_holds_under_concurrent_creations(node, guild, owner) -> None:
    for i in range(47):
        await add_emoji(node, guild.id, f"static{i}", owner)
    results = await asyncio.gather(
        *(owner.client.create_emoji(gid(guild), f"c{i}", still(color=i)) for i in range(6)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(results) - len(refused) == 3
    assert {getattr(r, "code", None) for r in refused} == {"max_emojis"}
    assert await count(node, guild_emojis) == 50


# -- permissions -------------------------------------------------------------------------------
async def test_who_may_create_edit_and_delete(node, make_client, guild, owner, member) -> None:
    g = gid(guild)
    maker = await person(make_client, "maker")
    await join(node, guild, maker, await add_role(node, guild.id, P.CREATE_GUILD_EXPRESSIONS))
    keeper = await person(make_client, "keeper")
    await join(node, guild, keeper, await add_role(node, guild.id, P.MANAGE_GUILD_EXPRESSIONS))
    manager = await person(make_client, "manager")  # MANAGE_GUILD is not enough
    await join(node, guild, manager, await add_role(node, guild.id, P.MANAGE_GUILD))

    for who in (member, manager):
        await expect(403, "missing_permissions", who.client.create_emoji(g, "nope", still()))
    owners = await owner.client.create_emoji(g, "owners", still(color=1))
    mine = await maker.client.create_emoji(g, "makers", still(color=2))
    kept = await keeper.client.create_emoji(g, "keepers", still(color=3))
    assert mine["user"]["id"] == maker.id

    # Any member may look.
    assert len(await member.client.emojis(g)) == 3
    assert (await member.client.emoji(g, owners["id"]))["name"] == "owners"

    # CREATE_GUILD_EXPRESSIONS: one's own only.
    assert (await maker.client.edit_emoji(g, mine["id"], name="mine"))["name"] == "mine"
    await expect(403, "missing_permissions", maker.client.edit_emoji(g, owners["id"], name="x1"))
    await expect(403, "missing_permissions", maker.client.delete_emoji(g, kept["id"]))
    for who in (member, manager):
        await expect(403, "missing_permissions", who.client.edit_emoji(g, mine["id"], name="x2"))
        await expect(403, "missing_permissions", who.client.delete_emoji(g, mine["id"]))
    # MANAGE_GUILD_EXPRESSIONS: anyone's.
    assert (await keeper.client.edit_emoji(g, owners["id"], name="o2"))["name"] == "o2"
    await keeper.client.delete_emoji(g, mine["id"])
    await owner.client.delete_emoji(g, kept["id"])
    await maker.client.create_emoji(g, "again", still(color=4))
    assert sorted(e["name"] for e in await owner.client.emojis(g)) == ["again", "o2"]


async def test_creator_without_the_permission_any_more(node, make_client, guild, owner) -> None:
    g = gid(guild)
    role = await add_role(node, guild.id, P.CREATE_GUILD_EXPRESSIONS)
    maker = await person(make_client, "maker")
    await join(node, guild, maker, role)
    mine = await maker.client.create_emoji(g, "mine", still())
    await owner.client.remove_member_role(g, maker.id, str(role))
    await expect(403, "missing_permissions", maker.client.delete_emoji(g, mine["id"]))


async def test_outsiders_get_404(node, make_client, guild, owner) -> None:
    g = gid(guild)
    created = await owner.client.create_emoji(g, "cat", still())
    outsider = await person(make_client, "outsider")
    calls = [
        outsider.client.emojis(g),
        outsider.client.emoji(g, created["id"]),
        outsider.client.create_emoji(g, "mine", still()),
        outsider.client.edit_emoji(g, created["id"], name="xx"),
        outsider.client.delete_emoji(g, created["id"]),
    ]
    for call in calls:
        await expect(404, "unknown_guild", call)
    assert (await owner.client.emoji(g, created["id"]))["name"] == "cat"


async def test_unknown_emoji(node, guild, owner) -> None:
    other = await create_guild(node, owner)
    elsewhere = await owner.client.create_emoji(gid(other), "far", still())
    for emoji_id in ("123", "junk", elsewhere["id"]):  # another guild's is not in this one
        await expect(404, "unknown_emoji", owner.client.emoji(gid(guild), emoji_id))
        await expect(404, "unknown_emoji", owner.client.edit_emoji(gid(guild), emoji_id, name="xx"))
        await expect(404, "unknown_emoji", owner.client.delete_emoji(gid(guild), emoji_id))
    await expect(404, "unknown_emoji", owner.client.emoji_image("123"))
    assert (await owner.client.emoji(gid(other), elsewhere["id"]))["name"] == "far"


# -- reactions ---------------------------------------------------------------------------------
async def test_reactions_with_custom_emoji(node, guild, owner, member) -> None:
    created = await owner.client.create_emoji(gid(guild), "party_cat", still())
    key = f"party_cat:{created['id']}"
    sent = await owner.client.send_message(guild.channel, "react")
    await member.client.add_reaction(guild.channel, sent.id, key)  # no USE_EXTERNAL_EMOJIS
    for bad in ("party_cat:123456", f"other_name:{created['id']}", f"Party_Cat:{created['id']}"):
        await expect(400, "unknown_emoji", member.client.add_reaction(guild.channel, sent.id, bad))
    reactions = (await owner.client.message(guild.channel, sent.id)).reactions
    assert [(r.emoji.id, r.emoji.name, r.count) for r in reactions] == [
        (created["id"], "party_cat", 1)
    ]

    # Deleting the emoji keeps the reactions; it cannot be added any more, only removed.
    await owner.client.delete_emoji(gid(guild), created["id"])
    assert len((await owner.client.message(guild.channel, sent.id)).reactions) == 1
    assert [u.id for u in await owner.client.reactions(guild.channel, sent.id, key)] == [member.id]
    await expect(400, "unknown_emoji", owner.client.add_reaction(guild.channel, sent.id, key))
    await member.client.remove_reaction(guild.channel, sent.id, key)
    assert (await owner.client.message(guild.channel, sent.id)).reactions == []


async def test_external_emoji_need_use_external_emojis(
    node, make_client, guild, owner, member
) -> None:
    home = await create_guild(node, owner)  # where the emoji lives
    await join(node, home, member)
    created = await owner.client.create_emoji(gid(home), "traveller", still())
    key = f"traveller:{created['id']}"
    sent = await owner.client.send_message(guild.channel, "react")

    # guild's @everyone is MEMBER: no USE_EXTERNAL_EMOJIS.
    await expect(
        403, "missing_permissions", member.client.add_reaction(guild.channel, sent.id, key)
    )
    await overwrite(
        node, guild.channel_id, member.uid, kind=MEMBER_OVERWRITE, allow=P.USE_EXTERNAL_EMOJIS
    )
    await member.client.add_reaction(guild.channel, sent.id, key)

    stranger = await person(make_client, "stranger")
    await join(node, guild, stranger, await add_role(node, guild.id, P.USE_EXTERNAL_EMOJIS))
    # Someone with the permission, but not in the emoji's guild, cannot use it, not even to
    # join a reaction already there.
    await expect(400, "unknown_emoji", stranger.client.add_reaction(guild.channel, sent.id, key))
    assert [u.id for u in await owner.client.reactions(guild.channel, sent.id, key)] == [member.id]

    # In a DM any custom emoji of one's guilds will do; others' guilds' are unknown.
    dm = str(await create_dm(node, [owner, member]))
    said = await owner.client.send_message(dm, "hi")
    await member.client.add_reaction(dm, said.id, key)
    await member.client.add_reaction(dm, said.id, "👍")
    elsewhere = str(await create_dm(node, [owner, stranger]))
    hello = await owner.client.send_message(elsewhere, "hello")
    await expect(400, "unknown_emoji", stranger.client.add_reaction(elsewhere, hello.id, key))


async def test_guild_everyone_with_external_emojis(node, make_client, owner) -> None:
    here = await create_guild(node, owner, everyone=MEMBER | P.USE_EXTERNAL_EMOJIS)
    home = await create_guild(node, owner)
    fan = await person(make_client, "fan")
    await join(node, here, fan)
    await join(node, home, fan)
    created = await owner.client.create_emoji(gid(home), "wave", still())
    sent = await owner.client.send_message(here.channel, "react")
    await fan.client.add_reaction(here.channel, sent.id, f"wave:{created['id']}")
    await overwrite(node, here.channel_id, here.everyone, deny=P.USE_EXTERNAL_EMOJIS)
    other = await owner.client.send_message(here.channel, "again")
    await expect(
        403,
        "missing_permissions",
        fan.client.add_reaction(here.channel, other.id, f"wave:{created['id']}"),
    )
