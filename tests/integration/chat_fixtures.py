"""Chat fixtures made with SQL, for tests that need exact permission setups.

Guilds, roles, members, channels, overwrites and DMs are inserted straight into the node's
database (the @everyone role has the guild's id, as in Discord). Users are registered
through the SDK so that they have tokens. Each helper is small enough to be swapped for the
guild API when a test wants to go through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from miaou import ids
from miaou.chat.models import ChannelType
from miaou.chat.permissions import Permission
from miaou.chat.tables import (
    channel_recipients,
    channels,
    guild_emojis,
    guilds,
    member_roles,
    members,
    overwrites,
    roles,
)
from miaou.ids import now_ms
from miaou.sdk import Client, GatewayClient, GatewayEvent
from miaou.server import RunningNode

PASSWORD = "correct horse battery"
P = Permission
# A plain member who can read and talk, but not moderate nor ping everyone.
MEMBER = (
    P.VIEW_CHANNEL | P.SEND_MESSAGES | P.READ_MESSAGE_HISTORY | P.ADD_REACTIONS
    | P.SEND_MESSAGES_IN_THREADS | P.EMBED_LINKS
)  # fmt: skip
ROLE = 0
MEMBER_OVERWRITE = 1


@dataclass
class Person:
    client: Client
    id: str

    @property
    def uid(self) -> int:
        return int(self.id)


@dataclass
class GuildFixture:
    id: int
    channel_id: int  # a text channel

    @property
    def everyone(self) -> int:
        return self.id

    @property
    def channel(self) -> str:
        return str(self.channel_id)


async def person(make_client: Callable[..., Client], username: str) -> Person:
    client = make_client()
    result = await client.register(username, PASSWORD)
    return Person(client, result.user.id)


async def _insert(node: RunningNode, table: Any, **values: Any) -> None:
    async with node.node.db.write() as conn:
        await conn.execute(table.insert().values(**values))


async def create_guild(
    node: RunningNode, owner: Person, *, everyone: int = MEMBER, slowmode: int = 0
) -> GuildFixture:
    guild_id, now = ids.new_id(), now_ms()
    async with node.node.db.write() as conn:
        await conn.execute(
            guilds.insert().values(
                id=guild_id, name="test guild", owner_id=owner.uid, created_at=now, updated_at=now
            )
        )
        await conn.execute(
            roles.insert().values(
                id=guild_id, guild_id=guild_id, name="@everyone", permissions=int(everyone),
                created_at=now,
            )
        )  # fmt: skip
        await conn.execute(
            members.insert().values(guild_id=guild_id, user_id=owner.uid, joined_at=now)
        )
    channel_id = await add_channel(node, guild_id, slowmode=slowmode)
    return GuildFixture(guild_id, channel_id)


async def add_channel(
    node: RunningNode,
    guild_id: int,
    *,
    type: int = ChannelType.GUILD_TEXT,
    slowmode: int = 0,
    parent_id: int | None = None,
) -> int:
    channel_id = ids.new_id()
    await _insert(
        node, channels, id=channel_id, guild_id=guild_id, type=int(type), name=f"c{channel_id}",
        rate_limit_per_user=slowmode, parent_id=parent_id, created_at=now_ms(),
        auto_archive_duration=1440 if type in (10, 11, 12) else None,
    )  # fmt: skip
    return channel_id


async def add_role(
    node: RunningNode,
    guild_id: int,
    permissions: int = 0,
    *,
    mentionable: bool = False,
    position: int = 1,
) -> int:
    role_id = ids.new_id()
    await _insert(
        node, roles, id=role_id, guild_id=guild_id, name=f"r{role_id}", position=position,
        mentionable=mentionable, permissions=int(permissions), created_at=now_ms(),
    )  # fmt: skip
    return role_id


async def join(node: RunningNode, guild: GuildFixture, who: Person, *role_ids: int) -> None:
    async with node.node.db.write() as conn:
        await conn.execute(
            members.insert().values(guild_id=guild.id, user_id=who.uid, joined_at=now_ms())
        )
        for role_id in role_ids:
            await conn.execute(
                member_roles.insert().values(guild_id=guild.id, user_id=who.uid, role_id=role_id)
            )


async def overwrite(
    node: RunningNode,
    channel_id: int,
    target_id: int,
    *,
    kind: int = ROLE,
    allow: int = 0,
    deny: int = 0,
) -> None:
    await _insert(
        node, overwrites, channel_id=channel_id, target_id=target_id, target_type=kind,
        allow=int(allow), deny=int(deny),
    )  # fmt: skip


async def create_dm(node: RunningNode, people: Iterable[Person]) -> int:
    channel_id = ids.new_id()
    async with node.node.db.write() as conn:
        await conn.execute(
            channels.insert().values(id=channel_id, type=ChannelType.DM, created_at=now_ms())
        )
        for p in people:
            await conn.execute(
                channel_recipients.insert().values(channel_id=channel_id, user_id=p.uid)
            )
    return channel_id


async def add_emoji(
    node: RunningNode, guild_id: int, name: str, creator: Person, *, animated: bool = False
) -> str:
    """A custom emoji row (its image is not stored: for tests that only react with it)."""
    emoji_id = ids.new_id()
    await _insert(
        node, guild_emojis, id=emoji_id, guild_id=guild_id, name=name, user_id=creator.uid,
        sha256="0" * 64, content_type="image/png", animated=animated, created_at=now_ms(),
    )  # fmt: skip
    return str(emoji_id)


async def rows(node: RunningNode, query: Any) -> list[Any]:
    async with node.node.db.read() as conn:
        return list((await conn.execute(query)).all())


async def count(node: RunningNode, table: Any, *where: Any) -> int:
    query = select(func.count()).select_from(table).where(*where)
    async with node.node.db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


GATEWAY_WAIT = 10.0  # seconds for each gateway event a test waits for


async def messages_in(gw: GatewayClient, count: int) -> list[GatewayEvent]:
    """The next ``count`` MESSAGE_CREATE events a gateway client receives (others skipped)."""
    got: list[GatewayEvent] = []
    while len(got) < count:
        event = await gw.next_event(timeout=GATEWAY_WAIT)
        if event.t == "MESSAGE_CREATE":
            got.append(event)
    return got
