"""Send-to-receipt latency of Miaou beside the raw encode-once server, in turns.

``bench_gateway`` measures one server after the other, minutes apart; on this shared
machine the speed of a fan-out moves by half within minutes (the raw server's own p99 at
1,000 members ranged 15.6-25.4 ms between runs of one day), so a ratio of two such runs
says as much about the machine as about the servers. Here both servers run at once, each
with its own members (its own load-generator process), and they take turns: ``--block``
messages at ``--rate`` to Miaou (a second at 10/s), then as many to raw, and so on, each
turn alone on the machine, so both see the same machine within seconds. (Alternating
single messages put the two fan-outs and their load generators' reading too close: both
servers' tails then rose by half.)

Per round (``--messages`` to each server): each server's p50 and p99 over every
(message, member) pair, and their ratios; then the median over rounds and every round's
ratio. Servers, members, frames and the load generator are bench_gateway's
(``bench/gateway_servers.py``, ``bench/gateway_load.py``): Miaou's messages are REST sends
by the guild's owner, SQLite, rate limits off; raw's are padded to Miaou's frame size.

    python -m bench gateway_turns                      # 1,000 members, 5 rounds of 50
    python -m bench.bench_gateway_turns --members 100 --rounds 9
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.bench_accounts import free_port
from bench.bench_gateway import LoadPool, burst, log, paced, pct, settle
from bench.gateway_load import raise_file_limit
from bench.gateway_servers import Target, start_target

# After a turn's last message, before the other server's turn.
TURN_GAP_S = 0.1


async def round_of(
    targets: list[Target],
    pools: list[LoadPool],
    messages: int,
    rate: float,
    block: int,
    payload: int,
) -> list[dict[str, float]]:
    """One round: ``messages`` to each target at ``rate``, in turns of ``block`` messages;
    per target p50 / p99 / max."""
    for pool in pools:
        await pool.expect(messages, latency=True)
    for first in range(0, messages, block):
        for target in targets:
            await paced(target, min(block, messages - first), rate, payload)
            await asyncio.sleep(TURN_GAP_S)  # the last fan-out of the turn ends alone
    waited = await asyncio.gather(*(p.wait(60) for p in pools))
    out = []
    for got in waited:
        lat = got["latencies_us"]
        if not got["complete"]:
            raise RuntimeError(f"{got['received']} of {got['expected']} deliveries arrived")
        out.append({"p50": pct(lat, 0.5) / 1000, "p99": pct(lat, 0.99) / 1000,
                    "max": max(lat) / 1000})  # fmt: skip
    return out


async def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_gateway_turns", description=__doc__)
    ap.add_argument("--members", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--messages", type=int, default=50, help="per server and round")
    ap.add_argument("--rate", type=float, default=10.0, help="messages/s, one server at a time")
    ap.add_argument("--block", type=int, default=10, help="messages per turn")
    a = ap.parse_args(argv)
    raise_file_limit()
    names = ["miaou", "raw"]
    targets: list[Target] = []
    pools: list[LoadPool] = []
    workdir = Path(tempfile.mkdtemp(prefix="gw-turns-"))
    try:
        for name in names:
            target = await start_target(name, free_port(), None)
            targets.append(target)
            pool = LoadPool(target, 10_000, workdir)
            pools.append(pool)
            tokens = await target.members(a.members, workdir)
            step = await pool.grow(a.members, tokens, 100)
            if pool.total < a.members:
                raise RuntimeError(f"{name}: {pool.total} of {a.members} connected")
            log(f"  {name}: {a.members} connected in {step['seconds']:.1f} s")
        payload = 0
        for target, pool in zip(targets, pools, strict=True):
            await settle(target)
            await burst(target, pool, 3, 10, payload or 600, latency=False)  # warm up
            if target.name == "miaou":
                payload = (await pool.stats())["message_frame_bytes"] - 4
        rounds: list[list[dict[str, float]]] = []
        for k in range(a.rounds):
            for target in targets:
                await settle(target)
            got = await round_of(targets, pools, a.messages, a.rate, a.block, payload)
            rounds.append(got)
            (m, r) = got
            log(f"  round {k + 1}: miaou p50 {m['p50']:.2f} p99 {m['p99']:.2f} | raw p50 "
                f"{r['p50']:.2f} p99 {r['p99']:.2f} | p50 x raw {m['p50'] / r['p50']:.2f}, "
                f"p99 x raw {m['p99'] / r['p99']:.2f}")  # fmt: skip
        report(a, rounds)
    finally:
        for pool in pools:
            await pool.close()
        for target in targets:
            target.stop()
            cleanup: Any = getattr(target, "cleanup", None)
            if cleanup is not None:
                await cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def report(a: argparse.Namespace, rounds: list[list[dict[str, float]]]) -> None:
    med = statistics.median
    p99_ratios = [m["p99"] / r["p99"] for m, r in rounds]
    p50_ratios = [m["p50"] / r["p50"] for m, r in rounds]
    log(f"\n{a.members} members, {a.rounds} rounds of {a.messages} messages to each server "
        f"at {a.rate:.0f}/s, in turns of {a.block} (medians over rounds)")  # fmt: skip
    log(f"{'server':<8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for i, name in enumerate(("miaou", "raw")):
        log(
            f"{name:<8}{med([g[i]['p50'] for g in rounds]):>9.2f}"
            f"{med([g[i]['p99'] for g in rounds]):>9.2f}{max(g[i]['max'] for g in rounds):>9.1f}"
        )
    log(
        f"p99 x raw: median {med(p99_ratios):.2f}, rounds "
        + " ".join(f"{x:.2f}" for x in p99_ratios)
    )
    log(
        f"p50 x raw: median {med(p50_ratios):.2f}, rounds "
        + " ".join(f"{x:.2f}" for x in p50_ratios)
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
