"""Gateway fan-out: deliveries per server CPU-second, send-to-receipt latency, memory per
idle connection; the Miaou node beside a ``websockets`` broadcast server, python-socketio
and a raw encode-once asyncio server, side by side in one run.

Every server runs in its own process (bench/gateway_servers.py, bench/gateway_contenders.py);
the clients are held by load-generator processes (bench/gateway_load.py, at most
``--per-worker`` connections each) and the messages are sent from this process. For each
server, one process lifetime: connections grow step by step to each size asked for
(100, 1,000, 10,000, 19,000 by default); at each size, once the server is idle again:

- **memory**: the server's RSS (VmRSS) against its RSS before any connection, per
  connection; and the marginal cost between two sizes (which leaves out fixed costs such as
  the database page cache and interpreter arenas warmed by the first connections);
- **latency** (100 and 1,000 members): ``--latency-messages`` messages at 10 per second, each
  carrying its send time (CLOCK_MONOTONIC, system-wide); p50 and p99 of send-to-receipt over
  every (message, member) pair of a repetition, the median over repetitions;
- **deliveries** (1,000 and 10,000 members): a burst of M messages at a steady rate that
  offers ``--offered`` deliveries per second (M = 200 at 1,000 members at 200/s, 50 at
  10,000 at 20/s); the server's CPU seconds (/proc utime + stime) from the first send until
  every member has received every message; deliveries = members x messages, all counted by
  the clients. Also deliveries per wall-second and frames per write syscall. Repetitions
  stop at ``--reps`` or once ``--size-seconds`` of bursts were spent on one size; a slow
  server's burst is cut to about ``--burst-seconds`` at the pace it showed at the previous
  size (python-socketio at 10,000 members).

Miaou: members are made with SQL (bench/gateway_servers.py); a message is a REST send by the
guild owner, so the node's CPU includes the HTTP request, validation and the SQLite commit of
every message (about 0.7 ms each, docs/benchmarks.md "sends"), which the contenders do not
do. Up to ``--distinct`` connections are each a different member; past that, connections
cycle over those members (a member with several sessions): each member's first session
broadcasts a PRESENCE_UPDATE to every connected member, so N distinct members cost N²/2
presence deliveries while connecting (at 10,000: 50 million), which this benchmark reports
but cannot afford at every size.

    python -m bench gateway                       # the default sizes; about 15 minutes
    MIAOU_BENCH_GATEWAY_ARGS=--quick make bench BENCH_ARGS=gateway   # flags through make
    python -m bench.bench_gateway --quick         # 1,000 members, one repetition; ~3 minutes
    python -m bench.bench_gateway --servers miaou,raw --members 1000 --memory 5000 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bench_accounts import free_port
from bench.gateway_load import raise_file_limit
from bench.gateway_servers import Cluster, Target, cpu_seconds, start_target

SERVERS = ("miaou", "raw", "websockets", "socketio")
FILLER = "hello from the bench, a message of ordinary length"
DEFAULT_PAYLOAD = 600  # contender message size when Miaou's frame size was not measured


@dataclass
class Config:
    servers: list[str]
    members: list[int]
    latency_members: list[int]
    memory: list[int]
    reps: int
    latency_messages: int
    latency_rate: float
    offered: float
    distinct: int
    per_worker: int
    concurrency: int
    size_seconds: float
    burst_seconds: float
    heartbeat_ms: int | None
    json_path: str | None
    cluster: Cluster | None = None

    @property
    def sizes(self) -> list[int]:
        return sorted({*self.members, *self.latency_members, *self.memory})

    def burst(self, members: int) -> tuple[int, float]:
        """(messages, per second) of one deliveries burst at this size."""
        messages = min(200, max(50, int(200_000 // members)))
        return messages, self.offered / members


def parse(argv: list[str]) -> Config:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_gateway", description=__doc__)
    sizes = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--members", type=sizes, default=[1000, 10000], help="deliveries sizes")
    ap.add_argument("--latency-members", type=sizes, default=[100, 1000])
    ap.add_argument("--memory", type=sizes, default=[10000, 19000], help="memory sizes")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--latency-messages", type=int, default=50, help="per repetition")
    ap.add_argument("--latency-rate", type=float, default=10.0)
    ap.add_argument("--offered", type=float, default=200_000, help="deliveries/s of a burst")
    ap.add_argument("--distinct", type=int, default=1000, help="Miaou: distinct members")
    ap.add_argument("--per-worker", type=int, default=10_000, help="connections per loader")
    ap.add_argument("--concurrency", type=int, default=100, help="connects in flight/loader")
    ap.add_argument("--size-seconds", type=float, default=30.0, help="bursts' time per size")
    ap.add_argument("--burst-seconds", type=float, default=10.0, help="cap a burst's length")
    ap.add_argument("--heartbeat-ms", type=int, default=None, help="Miaou heartbeat interval")
    ap.add_argument("--json", dest="json_path", default=None, help="write raw figures here")
    ap.add_argument("--workers", type=int, default=1,
                    help="Miaou: serve --workers N on PostgreSQL + Redis (needs "
                         "MIAOU_BENCH_POSTGRES_URL and MIAOU_BENCH_REDIS_URL)")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="1,000 members, 1 rep, ~3 minutes")
    a = ap.parse_args(argv)
    if a.quick:
        a.members, a.latency_members, a.memory = [1000], [100], [2000]
        a.reps, a.latency_messages = 1, 30
    cluster = None
    if a.workers > 1:
        postgres, redis = (os.environ.get(f"MIAOU_BENCH_{k}_URL") for k in ("POSTGRES", "REDIS"))
        if not (postgres and redis):
            ap.error("--workers needs MIAOU_BENCH_POSTGRES_URL and MIAOU_BENCH_REDIS_URL")
        cluster = Cluster(a.workers, postgres, redis)
    servers = [s for s in a.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r}; one of {', '.join(SERVERS)}")
    if "socketio" in servers and not (
        importlib.util.find_spec("socketio") and importlib.util.find_spec("aiohttp")
    ):
        print("socketio skipped: install the bench extra (pip install -e '.[dev,bench]')")
        servers.remove("socketio")
    return Config(
        servers=servers, members=a.members, latency_members=a.latency_members,
        memory=a.memory, reps=a.reps, latency_messages=a.latency_messages,
        latency_rate=a.latency_rate, offered=a.offered, distinct=a.distinct,
        per_worker=a.per_worker, concurrency=a.concurrency, size_seconds=a.size_seconds,
        burst_seconds=a.burst_seconds,
        heartbeat_ms=a.heartbeat_ms, json_path=a.json_path, cluster=cluster,
    )  # fmt: skip


def log(*parts: Any) -> None:
    print(*parts, flush=True)


def machine_busy() -> tuple[float, float]:
    """(busy, steal) CPU seconds of the whole machine so far (/proc/stat, all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle - steal) / tick, steal / tick


def pct(values: list[int] | list[float], q: float) -> float:
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else 0.0


# -- load generators ------------------------------------------------------------------------
class LoadWorker:
    def __init__(self, proc: asyncio.subprocess.Process, index: int) -> None:
        self.proc = proc
        self.index = index
        self.held = 0
        self._lock = asyncio.Lock()

    async def call(self, cmd: dict[str, Any], wait_s: float = 900) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        async with self._lock:
            self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
            await self.proc.stdin.drain()
            line = await asyncio.wait_for(self.proc.stdout.readline(), wait_s)
        if not line:
            raise RuntimeError(f"load generator {self.index} ended (see its log)")
        answer: dict[str, Any] = json.loads(line)
        return answer


class LoadPool:
    """Load-generator processes, filled in order up to ``per_worker`` connections each."""

    def __init__(self, target: Target, per_worker: int, workdir: Path) -> None:
        self.target = target
        self.per_worker = per_worker
        self.workdir = workdir
        self.workers: list[LoadWorker] = []
        self.total = 0

    async def _worker(self, index: int) -> LoadWorker:
        while len(self.workers) <= index:
            err = (self.workdir / f"load{len(self.workers)}.log").open("wb")
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.gateway_load",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=err,
                limit=1 << 26,
            )  # fmt: skip
            err.close()
            self.workers.append(LoadWorker(proc, len(self.workers)))
        return self.workers[index]

    async def grow(self, size: int, tokens: Path | None, concurrency: int) -> dict[str, Any]:
        """Connect until ``size`` connections are held; the connect figures."""
        jobs = []
        start = self.total
        while start < size:
            index = start // self.per_worker
            worker = await self._worker(index)
            count = min(size, (index + 1) * self.per_worker) - start
            # Past ~25,000 connections one source address runs short of ephemeral ports.
            local = f"127.0.0.{2 + index}" if size > 25_000 else None
            cmd = {
                "op": "connect", "kind": self.target.kind, "host": "127.0.0.1",
                "ports": self.target.ports, "path": self.target.path, "count": count,
                "tokens_file": str(tokens) if tokens else None, "start": start,
                "concurrency": concurrency, "local_host": local, "timeout": 600,
            }  # fmt: skip
            jobs.append((worker, count, cmd))
            start += count
        cpu0, t0 = self.target.cpu(), time.perf_counter()
        answers = await asyncio.gather(*(w.call(cmd) for w, _, cmd in jobs))
        seconds = time.perf_counter() - t0
        for (worker, _count, _), answer in zip(jobs, answers, strict=True):
            worker.held += answer["connected"]
        self.total = sum(w.held for w in self.workers)
        errors: dict[str, int] = {}
        for answer in answers:
            for why, n in answer["errors"].items():
                errors[why] = errors.get(why, 0) + n
        return {
            "added": sum(a["connected"] for a in answers),
            "failed": sum(a["failed"] for a in answers),
            "errors": errors,
            "seconds": seconds,
            "server_cpu": self.target.cpu() - cpu0,
            "ready_ms_p50": max((a["ready_ms_p50"] or 0) for a in answers),
            "ready_ms_p99": max((a["ready_ms_p99"] or 0) for a in answers),
        }

    async def expect(self, count: int, latency: bool) -> None:
        await asyncio.gather(
            *(w.call({"op": "expect", "count": count, "latency": latency}) for w in self.workers)
        )

    async def wait(self, wait_s: float) -> dict[str, Any]:
        answers = await asyncio.gather(
            *(w.call({"op": "wait", "timeout": wait_s}, wait_s + 60) for w in self.workers)
        )
        lat: list[int] = []
        for a in answers:
            lat.extend(a.get("latencies_us", ()))
        return {
            "complete": all(a["complete"] for a in answers),
            "received": sum(a["received"] for a in answers),
            "expected": sum(a["expected"] for a in answers),
            "short": sum(a["short"] for a in answers),
            "last_ns": max(a["last_ns"] for a in answers),
            "latencies_us": lat,
        }

    async def stats(self) -> dict[str, Any]:
        answers = await asyncio.gather(*(w.call({"op": "stats"}) for w in self.workers))
        codes: dict[str, int] = {}
        for a in answers:
            for code, n in a["close_codes"].items():
                codes[code] = codes.get(code, 0) + n
        return {
            "open": sum(a["open"] for a in answers),
            "drops": sum(a["drops"] for a in answers),
            "close_codes": codes,
            "other_frames": sum(a["other_frames"] for a in answers),
            "odd_frames": sum(a["odd_frames"] for a in answers),
            "message_frame_bytes": max(a["message_frame_bytes"] for a in answers),
        }

    def cpu(self) -> float:
        return sum(cpu_seconds(w.proc.pid) for w in self.workers if w.proc.returncode is None)

    async def close(self) -> None:
        for worker in self.workers:
            if worker.proc.returncode is None:
                try:
                    await worker.call({"op": "close"}, wait_s=30)
                    await asyncio.wait_for(worker.proc.wait(), 30)
                except (RuntimeError, TimeoutError, BrokenPipeError, ConnectionError):
                    worker.proc.kill()  # our own child, by its handle
                    await worker.proc.wait()


# -- one server -----------------------------------------------------------------------------
@dataclass
class Result:
    name: str
    baseline_kib: int = 0
    rss_kib: dict[int, int] = field(default_factory=dict)
    connect: dict[int, dict[str, Any]] = field(default_factory=dict)
    deliveries: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    latency: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    frame_bytes: int = 0


async def settle(target: Target, limit: float = 180) -> float:
    """Wait until the server uses under 4 % of a core over half a second; seconds waited."""
    t0 = time.perf_counter()
    previous = target.cpu()
    while time.perf_counter() - t0 < limit:
        await asyncio.sleep(0.5)
        now = target.cpu()
        if now - previous <= 0.02:
            break
        previous = now
    return time.perf_counter() - t0


def message_text(kind: str, payload: int) -> str:
    """A message with its send time; contenders' are padded to Miaou's frame size."""
    stamp = f"@@{time.monotonic_ns()}@@ "
    if kind == "miaou":
        return stamp + FILLER
    return stamp + "x" * max(0, payload - len(stamp))


async def paced(target: Target, count: int, rate: float, payload: int) -> dict[str, int]:
    """Send ``count`` messages at ``rate`` per second; the sender's tally."""
    sender = target.sender()
    await sender.open()
    t0 = time.monotonic()
    for i in range(count):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        sender.send(message_text(target.kind, payload))
    return await sender.finish(60)


async def burst(
    target: Target,
    pool: LoadPool,
    messages: int,
    rate: float,
    payload: int,
    latency: bool,
    expected_rate: float = 20_000,
) -> dict[str, Any]:
    """``messages`` at ``rate`` per second to every connection; waits for every delivery, or
    for 4x the time ``expected_rate`` deliveries per second would need (plus a minute)."""
    members = pool.total
    await pool.expect(messages, latency)
    cpu0, load0, (busy0, steal0) = target.cpu(), pool.cpu(), machine_busy()
    writes0 = target.writes()
    t0 = time.monotonic_ns()
    sends_task = asyncio.create_task(paced(target, messages, rate, payload))
    got = await pool.wait(60 + messages / rate + members * messages / expected_rate * 4)
    cpu = target.cpu() - cpu0
    writes = target.writes() - writes0
    load = pool.cpu() - load0
    busy, steal = machine_busy()
    sends = await sends_task
    lat = got.pop("latencies_us")
    wall = max(got["last_ns"] - t0, 1) / 1e9
    out = {
        **got, "members": members, "messages": messages, "rate": rate, "server_cpu": cpu,
        "load_cpu": load, "wall": wall, "per_cpu_s": got["received"] / cpu if cpu else 0.0,
        "per_wall_s": got["received"] / wall, "sends": sends,
        "machine_cores": (busy - busy0) / wall, "steal_s": steal - steal0,
        "writes": writes, "frames_per_write": got["received"] / writes if writes else 0.0,
    }  # fmt: skip
    if latency:
        out.update(p50_ms=pct(lat, 0.5) / 1000, p99_ms=pct(lat, 0.99) / 1000,
                   max_ms=max(lat, default=0) / 1000, samples=len(lat))  # fmt: skip
    return out


async def run_server(name: str, cfg: Config, payload: int) -> Result:
    result = Result(name)
    port = free_port()
    target = await start_target(name, port, cfg.heartbeat_ms, cfg.cluster)
    workdir = Path(tempfile.mkdtemp(prefix=f"gw-{name}-"))
    pool = LoadPool(target, cfg.per_worker, workdir)
    finished = False
    try:
        tokens = await target.members(min(cfg.distinct, max(cfg.sizes)), workdir)
        await settle(target)
        result.baseline_kib = target.rss()
        known_rate = 0.0  # deliveries per CPU-second at the last deliveries size
        for size in cfg.sizes:
            step = await pool.grow(size, tokens, cfg.concurrency)
            step["settle_s"] = await settle(target)
            result.connect[size] = step
            result.rss_kib[size] = target.rss()
            log(f"  {name} {size:>6} connected: +{step['added']} in {step['seconds']:.1f} s, "
                f"server CPU {step['server_cpu']:.1f} s, ready p50 {step['ready_ms_p50']:.0f} "
                f"ms, failed {step['failed']} {step['errors'] or ''}, RSS "
                f"{result.rss_kib[size] / 1024:.0f} MiB")  # fmt: skip
            if spread := target.spread():
                step["fds_per_process"] = spread
                log(f"  {name} {size:>6} descriptors per worker: {spread}")
            if pool.total < size:
                result.problems.append(f"only {pool.total} of {size} connections")
                break
            if size in cfg.latency_members or size in cfg.members:
                await burst(target, pool, 3, 10, payload, latency=False)  # warm up
                result.frame_bytes = (
                    result.frame_bytes or (await pool.stats())["message_frame_bytes"]
                )
            if size in cfg.latency_members:
                runs = result.latency.setdefault(size, [])
                for _ in range(cfg.reps):
                    run = await burst(target, pool, cfg.latency_messages, cfg.latency_rate,
                                      payload, latency=True)  # fmt: skip
                    runs.append(run)
                    log(f"  {name} {size:>6} latency p50 {run['p50_ms']:.2f} ms p99 "
                        f"{run['p99_ms']:.2f} ms max {run['max_ms']:.1f} ms "
                        f"({run['received']}/{run['expected']}), send answered p50 "
                        f"{run['sends'].get('ack_ms_p50') or 0:.1f} ms")  # fmt: skip
            if size in cfg.members:
                messages, rate = cfg.burst(size)
                if known_rate:  # a burst of about --burst-seconds at the last size's pace
                    cap = int(cfg.burst_seconds * known_rate / size)
                    messages = max(5, min(messages, cap))
                runs = result.deliveries.setdefault(size, [])
                spent = 0.0
                while len(runs) < cfg.reps and (not runs or spent < cfg.size_seconds):
                    await settle(target)
                    run = await burst(target, pool, messages, rate, payload, latency=False,
                                      expected_rate=known_rate or 20_000)  # fmt: skip
                    runs.append(run)
                    spent += run["wall"]
                    log(
                        f"  {name} {size:>6} deliveries {run['received']}/{run['expected']}: "
                        f"{run['per_cpu_s']:,.0f}/CPU-s, {run['per_wall_s']:,.0f}/s, server "
                        f"CPU {run['server_cpu']:.2f} s, loaders {run['load_cpu']:.2f} s, "
                        f"machine {run['machine_cores']:.2f} cores busy, steal "
                        f"{run['steal_s']:.2f} s, {run['frames_per_write']:.2f} frames/write"
                    )
                known_rate = median([r["per_cpu_s"] for r in runs])
        result.stats = await pool.stats()
        finished = True
    finally:
        await pool.close()
        if finished:  # else the load generators' logs stay in workdir, for the post-mortem
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            log(f"  {name}: load generator logs kept in {workdir}")
        target.stop()
        result.problems += target.problems()
        cleanup = getattr(target, "cleanup", None)
        if cleanup is not None:
            await cleanup()
    return result


# -- report ---------------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def report(cfg: Config, results: dict[str, Result]) -> None:
    names = [n for n in cfg.servers if n in results]
    log("\ndeliveries per server CPU-second (a burst: M messages at R/s; median of repetitions)")
    log(f"{'server':<11}{'members':>8}{'M':>5}{'R/s':>6}{'reps':>5}{'deliv/CPU-s':>13}"
        f"{'deliv/s':>10}{'CPU s':>7}{'frames/write':>13}{'complete':>9}{'x websockets':>13}"
        f"{'x raw':>7}")  # fmt: skip
    for size in cfg.members:
        base = {n: median([r["per_cpu_s"] for r in results[n].deliveries.get(size, [])])
                for n in names}  # fmt: skip
        for n in names:
            runs = results[n].deliveries.get(size, [])
            if not runs:
                continue
            ws, raw = base.get("websockets"), base.get("raw")
            log(f"{n:<11}{size:>8}{runs[0]['messages']:>5}{runs[0]['rate']:>6.0f}{len(runs):>5}"
                f"{base[n]:>13,.0f}{median([r['per_wall_s'] for r in runs]):>10,.0f}"
                f"{median([r['server_cpu'] for r in runs]):>7.2f}"
                f"{median([r['frames_per_write'] for r in runs]):>13.2f}"
                f"{all(r['complete'] for r in runs)!s:>9}"
                f"{base[n] / ws if ws else 0:>13.2f}"
                f"{base[n] / raw if raw else 0:>7.2f}")  # fmt: skip
    log(f"\nsend-to-receipt latency, {cfg.latency_rate:.0f} messages/s "
        "(median over repetitions of each repetition's p50 / p99)")  # fmt: skip
    log(f"{'server':<11}{'members':>8}{'reps':>5}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'p99 x raw':>10}{'REST answer p50 ms':>20}")  # fmt: skip
    for size in cfg.latency_members:
        raw_p99 = median([r["p99_ms"] for r in results["raw"].latency.get(size, [])]) if (
            "raw" in results) else 0  # fmt: skip
        for n in names:
            runs = results[n].latency.get(size, [])
            if not runs:
                continue
            p99 = median([r["p99_ms"] for r in runs])
            log(f"{n:<11}{size:>8}{len(runs):>5}{median([r['p50_ms'] for r in runs]):>9.2f}"
                f"{p99:>9.2f}{max(r['max_ms'] for r in runs):>9.1f}"
                f"{p99 / raw_p99 if raw_p99 else 0:>10.2f}"
                f"{median([r['sends'].get('ack_ms_p50') or 0 for r in runs]):>20.2f}")  # fmt: skip
    log("\nmemory per idle connection (server RSS; KiB per connection)")
    log(f"{'server':<11}{'conns':>7}{'RSS MiB':>9}{'total/N':>9}{'marginal':>10}"
        f"{'connect s':>10}{'conn CPU ms':>12}{'ready p50 ms':>13}")  # fmt: skip
    for n in names:
        r = results[n]
        previous = None
        for size in sorted(r.rss_kib):
            rss = r.rss_kib[size]
            total = (rss - r.baseline_kib) / size
            marginal = (rss - r.rss_kib[previous]) / (size - previous) if previous else total
            step = r.connect[size]
            cpu_ms = 1000 * step["server_cpu"] / max(step["added"], 1)
            log(f"{n:<11}{size:>7}{rss / 1024:>9.0f}{total:>9.2f}{marginal:>10.2f}"
                f"{step['seconds']:>10.1f}{cpu_ms:>12.2f}"
                f"{step['ready_ms_p50']:>13.0f}")  # fmt: skip
            previous = size
    log("\nclients and server logs")
    for n in names:
        r = results[n]
        log(f"{n}: {json.dumps(r.stats)}; message frame {r.frame_bytes} B")
        for line in r.problems[:20]:
            log(f"  ! {line[:300]}")
        if len(r.problems) > 20:
            log(f"  ! ... {len(r.problems) - 20} more lines")


async def main(argv: list[str]) -> None:
    cfg = parse(argv or os.environ.get("MIAOU_BENCH_GATEWAY_ARGS", "").split())
    raise_file_limit()  # inherited by the servers and load generators started from here
    log(f"gateway: servers {cfg.servers}; deliveries at {cfg.members}, latency at "
        f"{cfg.latency_members}, memory at {cfg.memory}; {cfg.reps} repetitions")  # fmt: skip
    results: dict[str, Result] = {}
    payload = DEFAULT_PAYLOAD
    started = time.perf_counter()
    for name in cfg.servers:
        t0 = time.perf_counter()
        results[name] = await run_server(name, cfg, payload)
        if name == "miaou" and results[name].frame_bytes:
            payload = results[name].frame_bytes - 4  # the same frame size for the others
        log(f"  {name} done in {time.perf_counter() - t0:.0f} s")
    report(cfg, results)
    log(f"\ntotal {time.perf_counter() - started:.0f} s")
    if cfg.json_path:
        data = json.dumps({n: r.__dict__ for n, r in results.items()}, indent=1, default=str)
        await asyncio.to_thread(Path(cfg.json_path).write_text, data)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
