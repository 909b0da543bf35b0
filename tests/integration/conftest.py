"""Fixtures of the chat integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from chat_world import World, build_world


@pytest.fixture
async def world(node) -> AsyncIterator[World]:
    """A populated guild (see chat_world) on the test's node."""
    w = await build_world(node.url)
    yield w
    await w.close()
