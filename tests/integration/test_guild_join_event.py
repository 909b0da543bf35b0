"""GUILD_JOIN carries the guild as READY lists it for the joiner: its fields and roles, the
member count, the channels the joiner may view (with their overwrites) and their member
object, so that a client shows the guild without reading it over REST."""

from __future__ import annotations

from typing import Any

import pytest
from chat_fixtures import Person, person
from node_marks import NO_RATE_LIMITS

from miaou.chat.permissions import Permission
from miaou.sdk import GatewayClient

TIMEOUT = 10.0
VIEW = str(int(Permission.VIEW_CHANNEL))


pytestmark = NO_RATE_LIMITS


async def live(who: Person, gateways: list[GatewayClient]) -> GatewayClient:
    gw = await who.client.gateway()
    gateways.append(gw)
    await gw.connect()
    return gw


@pytest.fixture
async def guild(make_client: Any) -> dict[str, Any]:
    """A guild made through the API: its #general (in a category), #open, #secret (hidden
    from @everyone by an overwrite, shown to the "crew" role), the crew role, an invite."""
    owner = await person(make_client, "owner")
    made = await owner.client.create_guild("Cats")
    gid = made["id"]
    general = next(c for c in made["channels"] if c["name"] == "general")
    open_ = await owner.client.create_channel(gid, "open")
    secret = await owner.client.create_channel(gid, "secret")
    crew = await owner.client.create_role(gid, "crew")
    await owner.client.put_overwrite(secret["id"], gid, type=0, deny=VIEW)
    await owner.client.put_overwrite(secret["id"], crew["id"], type=0, allow=VIEW)
    invite = await owner.client.create_guild_invite(general["id"], max_uses=0)
    return {
        "owner": owner.client,
        "made": made,
        "open": open_,
        "secret": secret,
        "crew": crew,
        "code": invite["code"],
    }


async def test_guild_join_carries_what_the_joiner_may_see(
    make_client: Any, guild: dict[str, Any], gateways: list[GatewayClient]
) -> None:
    made = guild["made"]
    newcomer = await person(make_client, "newcomer")
    gw = await live(newcomer, gateways)
    await newcomer.client.join(guild["code"])
    joined = (await gw.wait_for("GUILD_JOIN", timeout=TIMEOUT)).d

    assert joined["id"] == made["id"] and joined["name"] == "Cats"
    assert joined["follow"]["stream"] == f"guild:{made['id']}"
    assert joined["member_count"] == 2
    channels = {c["name"]: c for c in joined["channels"]}
    assert set(channels) == {"Text Channels", "general", "open"}  # not #secret
    assert guild["secret"]["id"] not in {c["id"] for c in joined["channels"]}
    assert all(c["guild_id"] == made["id"] for c in joined["channels"])
    assert channels["open"]["permission_overwrites"] == []
    roles = {r["id"]: r["name"] for r in joined["roles"]}
    assert roles == {made["id"]: "@everyone", guild["crew"]["id"]: "crew"}
    member = joined["member"]
    assert member["user"]["id"] == newcomer.id and member["user"]["username"] == "newcomer"
    assert member["roles"] == [] and member["temporary"] is False

    # The same guild as the next READY lists it (READY adds the presences, the event the
    # follow position).
    again = await live(newcomer, gateways)
    assert again.ready is not None
    (listed,) = again.ready["guilds"]
    listed.pop("presences", None)
    assert {k: v for k, v in joined.items() if k != "follow"} == listed


async def test_channels_follow_the_rules_not_only_the_denials(
    make_client: Any, guild: dict[str, Any], gateways: list[GatewayClient]
) -> None:
    """@everyone without VIEW_CHANNEL, and one channel whose @everyone overwrite allows it:
    that channel is the only one listed, and the joiner still gets the guild."""
    made, gid = guild["made"], guild["made"]["id"]
    owner = guild["owner"]
    base = int(made["roles"][0]["permissions"]) & ~int(Permission.VIEW_CHANNEL)
    await owner.update_role(gid, gid, permissions=base)
    await owner.put_overwrite(guild["open"]["id"], gid, type=0, allow=VIEW)
    newcomer = await person(make_client, "late")
    gw = await live(newcomer, gateways)
    await newcomer.client.join(guild["code"])
    joined = (await gw.wait_for("GUILD_JOIN", timeout=TIMEOUT)).d
    assert joined["id"] == gid
    assert [c["id"] for c in joined["channels"]] == [guild["open"]["id"]]
    (everyone,) = [r for r in joined["roles"] if r["id"] == gid]
    assert everyone["permissions"] == str(base)
