"""A node says when its event loop stalls, where it was stuck, and counts it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
import structlog

from miaou.server import RunningNode

pytestmark = pytest.mark.node_settings(loop_stall_ms=100)


def _block_the_loop_for_a_while() -> None:
    time.sleep(0.5)


async def _stall_metrics(node: RunningNode) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=node.url) as http:
        metrics = (await http.get("/metrics")).text
    return {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("miaou_event_loop_stall")
    }


async def test_a_blocked_loop_is_logged_with_its_stack_and_counted(node) -> None:
    # A loaded machine may stall the loop on its own too: what is ours is told by its stack.
    before = await _stall_metrics(node)
    with structlog.testing.capture_logs() as logs:
        await asyncio.sleep(0.1)  # the watch is beating
        _block_the_loop_for_a_while()
        await asyncio.sleep(0.1)  # the beat comes back
    stalls = [e for e in logs if e["event"] == "event_loop_stalled"]
    ours = [e for e in stalls if "in _block_the_loop_for_a_while" in e["loop_stack"][-1]]
    assert len(ours) == 1
    assert ours[0]["log_level"] == "warning" and ours[0]["blocked_ms"] >= 100
    resumed = [e for e in logs if e["event"] == "event_loop_resumed"]
    assert any(e["stalled_ms"] >= 450 for e in resumed)
    after = await _stall_metrics(node)
    assert after["miaou_event_loop_stalls_total"] - before["miaou_event_loop_stalls_total"] >= 1
    seconds = "miaou_event_loop_stall_seconds_total"
    assert after[seconds] - before[seconds] >= 0.45
