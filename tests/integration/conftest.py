"""Fixtures of the chat integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chat_world import World, build_world

from miaou.bus import Event


@pytest.fixture
async def world(node) -> AsyncIterator[World]:
    """A populated guild (see chat_world) on the test's node."""
    w = await build_world(node.url)
    yield w
    await w.close()


@pytest.fixture
def recorded(node) -> list[Event]:
    """Every event the test's node publishes on its bus, in order."""
    events: list[Event] = []
    node.node.bus.subscribe(events.append)
    return events
