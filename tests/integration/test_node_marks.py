"""The ``node`` fixture takes its settings from the closest ``node_settings`` marker."""

from __future__ import annotations

from node_marks import NO_RATE_LIMITS

from miaou.server import RunningNode


async def test_a_node_without_the_marker_limits_rates(node: RunningNode) -> None:
    assert node.node.settings.ratelimit.enabled is True


@NO_RATE_LIMITS
async def test_the_marker_reaches_the_node(node: RunningNode) -> None:
    assert node.node.settings.ratelimit.enabled is False
