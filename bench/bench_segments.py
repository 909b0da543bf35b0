"""Segment serving: CPU per HLS listener, the node beside nginx serving the same files.

A `miaou serve` subprocess (SQLite, rate limits off) gets a user and a generated 3-minute
stereo track (FLAC, uploaded through the API); once the track is ``ready``, its master
playlist and the ``aac_128`` variant playlist give the segment URLs (fMP4, 6 s each). Every
segment is fetched once to check that its bytes hash to its ETag, the sha256 naming its
blob in the node's content-addressed store (``<data_dir>/media/ab/cd/<sha256>``). nginx,
when on PATH, is started as our own subprocess (one worker, ``sendfile``, no access log)
on a directory of symlinks ``/seg/aac_128/seg_NNNNN.m4s`` -> those blobs: the same bytes.

The load: N simulated listeners, each one keep-alive HTTP/1.1 connection (a bare asyncio
client with pre-encoded requests; httpx would be the bottleneck) asking for the next
segment every 6 s, the listeners' phases spread evenly over the 6 s (N/6 requests a
second), each listener starting at another segment and cycling through them. A listener
reads every body in full and checks 200 and the Content-Length against the segment's
size; anything else is an error. A connection the server closed while idle is opened
again before the next request (counted as a reconnect), and a request that meets a
connection closed at the very moment it was sent is sent again once on a new one, as
browsers do. Listeners are spread over several load processes (one per 2,500 listeners
unless MIAOU_BENCH_LOAD_PROCS says), so the load generator keeps the schedule: the lag
(actual minus scheduled start of a request) is reported.

Measured over a window of MIAOU_BENCH_SECONDS (default 30) after a 6 s warm-up: the
server's CPU time (user + system from /proc; nginx: master and worker), requests and bytes
served, latency of a segment fetch, errors. CPU per listener is shown as cores per 1,000
listeners (CPU-seconds per second per 1,000 listeners). nginx runs twice: with a 75 s
keep-alive (its usual setting) and with 5 s (uvicorn's default, which the node used before it
set 20 s): with a segment every 6 s, a 5 s keep-alive closes each listener's connection
before its next request.

    python -m bench segments    # MIAOU_BENCH_LISTENERS=1000,5000  MIAOU_BENCH_SECONDS=30
                                # MIAOU_BENCH_PYSPY=/tmp/seg.txt: py-spy (raw; the venv's or
                                # the one on PATH) of the node
                                # during its window at the largest N
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import multiprocessing
import multiprocessing.connection
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from bench.bench_accounts import free_port, pct
from bench.bench_audio import RATE, music, write_flac
from bench.node_process import node_process

PERIOD = 6.0  # seconds between a listener's requests: the segment length
WARMUP = PERIOD
SECONDS = float(os.environ.get("MIAOU_BENCH_SECONDS", "30"))
LISTENERS = [int(n) for n in os.environ.get("MIAOU_BENCH_LISTENERS", "1000,5000").split(",")]
LOAD_PROCS = int(os.environ.get("MIAOU_BENCH_LOAD_PROCS", "0"))  # 0: one per 2,500
PER_LOAD_PROC = 2500
PYSPY = os.environ.get("MIAOU_BENCH_PYSPY", "")
TRACK_SECONDS = 180.0
VARIANT = "aac_128"
PASSWORD = "correct horse battery"
REQUEST_TIMEOUT = 20.0  # one segment fetch, connecting included
CONNECT_BATCH = 100  # connections opened at once before the run (listen backlogs)
NGINX_KEEPALIVES = (75, 5)  # seconds
GOAL = 2.0  # the node may use at most this many times nginx's CPU per listener
LAG_WARN_S = 0.05


# -- the track and its segments ------------------------------------------------------------
@dataclass(frozen=True)
class Segment:
    name: str  # "aac_128/seg_00000.m4s"
    target: str  # the node's request target
    size: int
    blob: Path


async def publish_track(url: str, work: Path) -> str:
    """Register, upload a generated track, wait until it is ready: its master playlist URL."""
    source = work / "track.flac"
    write_flac(source, music(TRACK_SECONDS, RATE, seed=1))
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        r = await http.post("/api/v1/auth/register",
                            json={"username": "listener", "password": PASSWORD})  # fmt: skip
        r.raise_for_status()
        auth = {"authorization": f"Bearer {r.json()['token']}"}
        with source.open("rb") as audio:
            r = await http.post("/api/v1/tracks", headers=auth,
                                files={"file": ("track.flac", audio, "audio/flac")})  # fmt: skip
        r.raise_for_status()
        track_id = r.json()["id"]
        for _ in range(600):  # 5 minutes
            track = (await http.get(f"/api/v1/tracks/{track_id}", headers=auth)).json()
            if track["state"] == "ready":
                return str(track["media"]["hls"])
            if track["state"] == "failed":
                raise RuntimeError(f"processing failed: {track.get('error')}")
            await asyncio.sleep(0.5)
    raise RuntimeError("the track was not ready after 5 minutes")


def playlist_uris(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


async def track_segments(url: str, master: str, media_dir: Path) -> list[Segment]:
    """The variant's segments, each checked: its bytes hash to the blob that holds them."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.get(master)
        r.raise_for_status()
        variant = next(u for u in playlist_uris(r.text) if u.startswith(f"{VARIANT}/"))
        variant_url = urljoin(urljoin(url, master), variant)
        r = await http.get(variant_url)
        r.raise_for_status()
        segments = []
        for uri in playlist_uris(r.text):
            target = urlsplit(urljoin(variant_url, uri)).path
            body = await http.get(target)
            body.raise_for_status()
            sha256 = body.headers["etag"].strip('"')
            blob = media_dir / sha256[:2] / sha256[2:4] / sha256
            if hashlib.sha256(body.content).hexdigest() != sha256 or blob.stat().st_size != len(
                body.content
            ):
                raise RuntimeError(f"{uri}: the answer is not the blob {blob}")
            segments.append(Segment(f"{VARIANT}/{uri}", target, len(body.content), blob))
    if not segments:
        raise RuntimeError("the variant playlist lists no segments")
    return segments


def request(target: str) -> bytes:
    return f"GET {target} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()


# -- nginx ----------------------------------------------------------------------------------
NGINX_CONF = """\
{user}worker_processes 1;
worker_rlimit_nofile {nofile};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{
    worker_connections {connections};
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout {keepalive}s;
    keepalive_requests 10000;
    server_tokens off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{
        audio/mp4 m4s mp4;
        application/vnd.apple.mpegurl m3u8;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location /seg/ {{
            root {tmp}/root;
            add_header Cache-Control "public, max-age=31536000, immutable";
            add_header X-Content-Type-Options nosniff;
            add_header Content-Security-Policy "default-src 'none'; sandbox";
        }}
    }}
}}
"""


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


async def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(100):  # 10 s
        if proc.poll() is not None:
            raise RuntimeError(f"nginx exited with {proc.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("nginx did not start listening")


@contextlib.asynccontextmanager
async def nginx_process(
    binary: str, segments: list[Segment], keepalive: int
) -> AsyncIterator[tuple[int, int, list[str]]]:
    """Yield (port, master PID, request targets): nginx serving the blobs of ``segments``
    through symlinks named like them; stopped (by its PID) on exit."""
    with tempfile.TemporaryDirectory() as tmp:
        targets = []
        for segment in segments:
            link = Path(tmp) / "root" / "seg" / segment.name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(segment.blob)
            targets.append(f"/seg/{segment.name}")
        port = free_port()
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                # The blobs sit in the node's private (0700) data directory.
                user="user root;\n" if os.geteuid() == 0 else "",
                nofile=nofile,
                connections=max(1024, nofile - 100),
                tmp=tmp,
                keepalive=keepalive,
                port=port,
            )
        )
        command = [binary, "-p", tmp, "-c", str(conf), "-e", f"{tmp}/error.log"]
        proc = subprocess.Popen(  # noqa: ASYNC220 - started once, stopped below
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            await wait_port(port, proc)
            yield port, proc.pid, targets
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # fast shutdown: the master stops its worker
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


# -- the load: listeners in load processes --------------------------------------------------
@dataclass
class Job:
    port: int
    requests: list[bytes]
    sizes: list[int]
    first: int  # index of this process's first listener
    count: int
    total: int  # listeners across all load processes


@dataclass
class Stats:
    served: int = 0  # answers completed in the window
    body_bytes: int = 0  # their bodies
    # Of the requests due in the window:
    scheduled: int = 0
    behind: int = 0  # due before the listener's previous answer came: the server lags
    reconnects: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)  # sent -> whole body read
    lags: list[float] = field(default_factory=list)  # the load generator's own delay
    errors: int = 0  # at any time
    error_samples: list[str] = field(default_factory=list)
    lag_max: float = 0.0  # the largest generator delay at any time
    cpu: float = 0.0  # this load process's CPU seconds


class StaleConnection(Exception):
    """The connection was closed under a request before any of the answer came."""


class Listener:
    def __init__(self, index: int, job: Job) -> None:
        self.index = index
        self.job = job
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def connect(self) -> None:
        self.close()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.job.port)

    def usable(self) -> bool:
        return not (
            self.reader is None
            or self.writer is None
            or self.reader.at_eof()
            or self.writer.is_closing()
        )

    async def exchange(self, segment: int) -> int:
        assert self.reader is not None and self.writer is not None
        try:
            self.writer.write(self.job.requests[segment])
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise
            raise StaleConnection() from None
        except (ConnectionResetError, BrokenPipeError):
            raise StaleConnection() from None
        status = int(head[9:12])
        length, close = None, False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
            elif name == b"transfer-encoding":
                raise ValueError("a chunked answer")
        if length is None:
            raise ValueError(f"no Content-Length (status {status})")
        await self.reader.readexactly(length)
        if status != 200:
            raise ValueError(f"status {status}")
        if length != self.job.sizes[segment]:
            raise ValueError(f"{length} bytes instead of {self.job.sizes[segment]}")
        if close:
            self.close()
        return length

    async def fetch(self, segment: int, stats: Stats, counted: bool) -> int:
        reused = self.usable()
        if not reused:
            await self.connect()
            stats.reconnects += counted
        try:
            return await self.exchange(segment)
        except StaleConnection:
            if not reused:
                raise
        stats.retries += counted
        await self.connect()
        return await self.exchange(segment)

    async def run(self, t0: float, rounds: int, stats: Stats) -> None:
        job = self.job
        phase = PERIOD * self.index / job.total
        window = (t0 + WARMUP, t0 + WARMUP + SECONDS)
        previous_done = -math.inf
        for k in range(rounds):
            due = t0 + phase + k * PERIOD
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            start = time.monotonic()
            # Past ``due`` and the previous answer, any delay is the generator's own.
            lag = start - max(due, previous_done)
            stats.lag_max = max(stats.lag_max, lag)
            counted = window[0] <= due < window[1]
            if counted:
                stats.scheduled += 1
                stats.behind += previous_done > due
            segment = (self.index + k) % len(job.requests)
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    length = await self.fetch(segment, stats, counted)
            except (OSError, EOFError, ValueError, StaleConnection, TimeoutError) as exc:
                previous_done = time.monotonic()
                stats.errors += 1
                if len(stats.error_samples) < 5:
                    stats.error_samples.append(f"{type(exc).__name__}: {exc}")
                self.close()
                continue
            previous_done = done = time.monotonic()
            if window[0] <= done < window[1]:
                stats.served += 1
                stats.body_bytes += length
            if counted:
                stats.latencies.append(done - start)
                stats.lags.append(lag)
        self.close()


def rounds() -> int:
    """Requests per listener: the warm-up and the window, and one round past its end so
    that the load is steady until the window closes."""
    return math.ceil((WARMUP + SECONDS) / PERIOD) + 1


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def load_process(conn: multiprocessing.connection.Connection, job: Job) -> None:
    """A load process: connect its listeners, say so, wait for the start time, run."""
    raise_nofile()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    try:
        conn.send(("done", asyncio.run(_load(conn, job))))
    except Exception as exc:  # reported to the parent, which raises it
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


async def _load(conn: multiprocessing.connection.Connection, job: Job) -> Stats:
    stats = Stats()
    listeners = [Listener(job.first + i, job) for i in range(job.count)]
    for start in range(0, job.count, CONNECT_BATCH):
        batch = listeners[start : start + CONNECT_BATCH]
        done = await asyncio.gather(*(one.connect() for one in batch), return_exceptions=True)
        failed = [d for d in done if isinstance(d, BaseException)]
        if failed:  # they connect again at their first request; counted there if it fails
            stats.error_samples.append(f"at setup: {len(failed)} x {failed[0]!r}")
    conn.send(("ready", job.count))
    if not conn.poll(120):
        raise RuntimeError("no start time from the parent")
    t0 = conn.recv()
    cpu0 = _own_cpu()
    await asyncio.gather(*(one.run(t0, rounds(), stats) for one in listeners))
    stats.cpu = _own_cpu() - cpu0
    return stats


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def receive(conn: multiprocessing.connection.Connection, within: float) -> Any:
    def wait() -> Any:
        if not conn.poll(within):
            raise RuntimeError(f"a load process said nothing for {within:.0f} s")
        return conn.recv()

    kind, value = await asyncio.to_thread(wait)
    if kind == "failed":
        raise RuntimeError(f"a load process failed: {value}")
    return value


def server_cpu(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of ``pid`` and its live children (/proc): the node and
    its job processes, or nginx's master and worker."""
    pids = {pid}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(_proc_stat(int(entry.name))[1]) == pid:
                    pids.add(int(entry.name))
    user = system = 0
    for one in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = _proc_stat(one)
            user, system = user + int(fields[11]), system + int(fields[12])
    tick = os.sysconf("SC_CLK_TCK")
    return user / tick, system / tick


def _proc_stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (field 3 onwards)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - time.monotonic()))


@contextlib.contextmanager
def pyspy(pid: int | None) -> Iterator[None]:
    """py-spy (raw, 200 Hz, non-blocking) on ``pid`` for the window, into PYSPY; our own
    subprocess, waited for (it stops after its duration)."""
    found = Path(sys.executable).parent / "py-spy"
    binary = str(found) if found.exists() else shutil.which("py-spy")
    if pid is None or not PYSPY or binary is None:
        yield
        return
    seconds = str(max(1, int(min(20.0, SECONDS))))
    command = [binary, "record", "-p", str(pid), "-d", seconds, "-r", "200", "-f", "raw",
               "-o", PYSPY, "--nonblocking"]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


async def drive(
    port: int,
    targets: list[str],
    sizes: list[int],
    listeners: int,
    server_pid: int,
    profile_pid: int | None = None,
) -> dict[str, Any]:
    """Run ``listeners`` against ``port`` and measure the server over the window."""
    procs = LOAD_PROCS or max(1, math.ceil(listeners / PER_LOAD_PROC))
    context = multiprocessing.get_context("spawn")
    requests = [request(t) for t in targets]
    pipes, workers = [], []
    try:
        for p in range(procs):
            first, last = listeners * p // procs, listeners * (p + 1) // procs
            job = Job(port, requests, sizes, first, last - first, listeners)
            ours, theirs = context.Pipe()
            worker = context.Process(target=load_process, args=(theirs, job), daemon=True)
            worker.start()
            theirs.close()
            pipes.append(ours)
            workers.append(worker)
        for conn in pipes:
            await receive(conn, 120)
        t0 = time.monotonic() + 1.0
        for conn in pipes:
            conn.send(t0)
        await sleep_until(t0 + WARMUP)
        cpu0, wall0 = server_cpu(server_pid), time.monotonic()
        with pyspy(profile_pid):
            await sleep_until(t0 + WARMUP + SECONDS)
            cpu1, wall = server_cpu(server_pid), time.monotonic() - wall0
        user, system = cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]
        cpu = user + system
        stats: list[Stats] = []
        for conn in pipes:
            stats.append(await receive(conn, rounds() * PERIOD + REQUEST_TIMEOUT + 60))
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()  # our own load process
                worker.join(timeout=5)
        for conn in pipes:
            conn.close()
    latencies = [x for s in stats for x in s.latencies]
    lags = [x for s in stats for x in s.lags]
    served = sum(s.served for s in stats)
    return {
        "listeners": listeners,
        "procs": procs,
        "cpu": cpu,
        "sys_share": system / cpu if cpu else math.nan,
        "wall": wall,
        # What 1,000 listeners cost at this CPU per request (one request per PERIOD each):
        # CPU-seconds per second, i.e. cores. The same as the CPU per second of the window
        # divided by the listeners when the server keeps up; when it does not, the window
        # served fewer requests than the listeners asked for, and this is what they need.
        "cores_per_1k": cpu / served * 1000 / PERIOD if served else math.nan,
        "cpu_us_per_request": cpu / served * 1e6 if served else math.nan,
        "served": served,
        "scheduled": sum(s.scheduled for s in stats),
        "behind": sum(s.behind for s in stats),
        "rps": served / wall,
        "mb_per_s": sum(s.body_bytes for s in stats) / wall / 1e6,
        "p50_ms": pct(latencies, 0.5) * 1000 if latencies else math.nan,
        "p99_ms": pct(latencies, 0.99) * 1000 if latencies else math.nan,
        "lag_p99_ms": pct(lags, 0.99) * 1000 if lags else math.nan,
        "lag_max_ms": max(s.lag_max for s in stats) * 1000,
        "errors": sum(s.errors for s in stats),
        "error_samples": [e for s in stats for e in s.error_samples][:5],
        "reconnects": sum(s.reconnects for s in stats),
        "retries": sum(s.retries for s in stats),
        "load_cores": sum(s.cpu for s in stats) / (rounds() * PERIOD),
    }


def node_media_dir(pid: int) -> Path:
    """``<data_dir>/media`` of the node: node_process runs it in its data directory."""
    return Path(os.readlink(f"/proc/{pid}/cwd")) / "media"


# -- the run --------------------------------------------------------------------------------
async def main(argv: list[str]) -> None:
    raise_nofile()
    nginx = nginx_binary()
    rows: list[tuple[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        async with node_process(port, None) as (url, _, pid):
            media_dir = node_media_dir(pid)
            master = await publish_track(url, Path(tmp))
            segments = await track_segments(url, master, media_dir)
            sizes = [s.size for s in segments]
            node_targets = [s.target for s in segments]
            for n in LISTENERS:
                profile = pid if n == max(LISTENERS) else None
                result = await drive(port, node_targets, sizes, n, pid, profile)
                rows.append(("miaou", result))
                if nginx is None:
                    continue
                for keepalive in NGINX_KEEPALIVES:
                    async with nginx_process(nginx, segments, keepalive) as (nport, npid, targets):
                        result = await drive(nport, targets, sizes, n, npid)
                    rows.append((f"nginx ka {keepalive}s", result))
    report(rows, segments, nginx, master)


def report(
    rows: list[tuple[str, dict[str, Any]]], segments: list[Segment], nginx: str | None, master: str
) -> None:
    mean_kb = sum(s.size for s in segments) / len(segments) / 1000
    print(f"{len(segments)} {VARIANT} fMP4 segments of a {TRACK_SECONDS:.0f} s track "
          f"(mean {mean_kb:.1f} kB), {master}")  # fmt: skip
    print(f"each listener: one segment every {PERIOD:.0f} s on a keep-alive connection; "
          f"{SECONDS:.0f} s window after a {WARMUP:.0f} s warm-up; "
          f"{os.cpu_count()} CPUs")  # fmt: skip
    if nginx is None:
        print("nginx: not found on PATH (apt-get install nginx): the node only")
    else:
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
        print(f"{version.stderr.strip()}: 1 worker, sendfile, access_log off, same blob files")
    print(f"{'server':<14}{'listeners':>10}{'req/s':>7}{'MB/s':>6}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'behind':>8}{'lag p99':>8}{'errors':>7}{'reconn':>7}{'CPU s':>7}{'sys':>5}"
          f"{'us/req':>7}"
          f"{'cores/1k':>9}{'load cores':>11}")  # fmt: skip
    for name, r in rows:
        behind = r["behind"] / r["scheduled"] if r["scheduled"] else math.nan
        mark = "*" if behind > 0.01 else " "
        print(f"{name:<14}{r['listeners']:>10}{r['rps']:>7.0f}{r['mb_per_s']:>6.1f}"
              f"{r['p50_ms']:>9.2f}{r['p99_ms']:>9.1f}{behind:>8.1%}{r['lag_p99_ms']:>8.1f}"
              f"{r['errors']:>7}{r['reconnects']:>7}{r['cpu']:>7.2f}{r['sys_share']:>5.0%}"
              f"{r['cpu_us_per_request']:>7.0f}{r['cores_per_1k']:>8.3f}{mark}"
              f"{r['load_cores']:>11.2f}")  # fmt: skip
    for name, r in rows:
        if r["behind"] > 0.01 * r["scheduled"]:
            print(f"  * {name} {r['listeners']}: the server did not keep up: {r['served']} answers "
                  f"in the window for {r['scheduled']} requests due in it; cores/1k is what "
                  f"the listeners would need at the CPU per request measured")  # fmt: skip
        if r["lag_p99_ms"] > LAG_WARN_S * 1000:
            print(f"  {name} {r['listeners']}: the load processes ({r['procs']}) fell behind "
                  f"(lag p99 {r['lag_p99_ms']:.0f} ms, max {r['lag_max_ms']:.0f} ms)")  # fmt: skip
        if r["errors"] or r["retries"]:
            print(f"  {name} {r['listeners']}: {r['errors']} errors, {r['retries']} retries "
                  f"{r['error_samples']}")  # fmt: skip
    by = {(name, r["listeners"]): r for name, r in rows}
    for n in LISTENERS:
        ours = by.get(("miaou", n))
        for keepalive in NGINX_KEEPALIVES:
            theirs = by.get((f"nginx ka {keepalive}s", n))
            if ours and theirs:
                ratio = ours["cores_per_1k"] / theirs["cores_per_1k"]
                verdict = "met" if ratio <= GOAL else "NOT met"
                print(f"{n} listeners: miaou / nginx (keep-alive {keepalive} s) CPU per "
                      f"listener = {ratio:.1f}x (goal <= {GOAL:.0f}x: {verdict})")  # fmt: skip
    print("req/s, MB/s: answers completed in the window; p50/p99: request sent -> body read; "
          "behind: requests due before the listener's previous answer came (the server "
          "lags); lag p99: the load generator's own delay past a request's due time; "
          "reconn: connections opened again in the window (a keep-alive shorter than the "
          "6 s between segments closes them); "
          "sys: the system-time share of the server's CPU; cores/1k: CPU-seconds per second "
          "for 1,000 listeners (us/req x 1000 / 6 s)")  # fmt: skip
    print("Not measured here: with media_accel_redirect = \"/_media/\" (an nginx internal "
          "location on the media directory) the node answers media requests with an empty "
          "X-Accel-Redirect response and nginx sends the bytes (ranges included).")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
