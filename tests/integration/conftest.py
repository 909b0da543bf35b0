"""Fixtures of the integration tests: a migrated database without a node, and the chat cast."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from chat_fixtures import GuildFixture, Person, create_guild, join, person
from chat_world import World, build_world

from miaou.bus import Event
from miaou.db.engine import Database
from miaou.sdk import GatewayClient


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A fresh, migrated database of the kind under test, with no node on it."""
    database = Database(database_url)
    yield database
    await database.close()


@pytest.fixture
async def world(node) -> AsyncIterator[World]:
    """A populated guild (see chat_world) on the test's node."""
    w = await build_world(node.url)
    yield w
    await w.close()


@pytest.fixture
async def gateways() -> AsyncIterator[list[GatewayClient]]:
    """Gateway clients a test opens; closed after it."""
    opened: list[GatewayClient] = []
    yield opened
    await asyncio.gather(*(gw.close() for gw in opened))


@pytest.fixture
def recorded(node) -> list[Event]:
    """Every event the test's node publishes on its bus, in order."""
    events: list[Event] = []
    node.node.bus.subscribe(events.append)
    return events


# The cast of most chat tests; a module may redefine any of them (a guild with more
# permissions for @everyone, say).
@pytest.fixture
async def owner(make_client) -> Person:
    return await person(make_client, "owner")


@pytest.fixture
async def guild(node, owner: Person) -> GuildFixture:
    """A guild whose @everyone has the plain member permissions (``chat_fixtures.MEMBER``)."""
    return await create_guild(node, owner)


@pytest.fixture
async def member(node, make_client, guild: GuildFixture) -> Person:
    """A plain member of ``guild``."""
    who = await person(make_client, "member")
    await join(node, guild, who)
    return who
