"""The gateway benchmark's load generator: one process holding many WebSocket clients.

Run by ``bench/bench_gateway.py`` as ``python -m bench.gateway_load``; it reads one JSON
command per line on stdin and answers one JSON line on stdout (commands below). Each process
holds at most a few thousand to ~15,000 sockets; the benchmark starts several for more.

The clients are lean on purpose, so that the load side costs little CPU beside the server:
a plain ``asyncio.Protocol`` per connection, a hand-made client handshake (the
``Sec-WebSocket-Accept`` answer is not checked), masked client frames built by hand, and a
frame parser that walks headers and looks only at the first bytes of each payload. Three
dialects:

- ``miaou``: the Miaou gateway (docs/gateway.md): HELLO -> IDENTIFY with a real token ->
  READY; a HEARTBEAT every ``heartbeat_interval`` (the first one at a random point of the
  first interval); ``MESSAGE_CREATE`` dispatches are counted, other frames (presence,
  heartbeat acks) are counted apart.
- ``ws``: the contenders that speak plain WebSocket (bench/gateway_contenders.py): the
  server's first text frame (``hello``) means subscribed; every later text frame is a
  broadcast message. Pings are answered with pongs.
- ``sio``: Socket.IO over Engine.IO 4, WebSocket transport only, spoken by hand: ``0{...}``
  (open) -> we send ``40`` -> ``40{...}`` (the server's connect handler, which joins the
  room, has run) means subscribed; ``42["msg",...]`` is a broadcast message; ``2`` (ping)
  is answered ``3``.

Latency: a message's text carries its send time as ``@@<CLOCK_MONOTONIC ns>@@`` (system-wide
on Linux, so comparable across processes); receipt time is read once per ``data_received``.

Commands (``{"op": ...}``) and answers:

- ``connect``: ``kind``, ``host``, ``ports`` (connections spread over them), ``path``,
  ``tokens_file`` + ``start`` (Miaou: line ``start + i`` is connection i's token), ``count``,
  ``concurrency``, ``timeout`` -> connected, failed, errors, seconds, ready times.
- ``expect``: ``count`` (messages each connection must receive from now), ``latency``
  (record send-to-receipt times) -> {}.
- ``wait``: ``timeout`` -> whether every open connection got its count, the totals, the
  first and last receipt times, the latencies (µs) if recorded.
- ``stats`` -> open connections, drops, close codes, frames by kind.
- ``close`` -> closes every connection and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

MIAOU_MESSAGE = b'{"op":0,"t":"MESSAGE_CREATE"'
MIAOU_HELLO = b'{"op":10'
MIAOU_READY = b'{"op":0,"t":"READY"'
SIO_MESSAGE = b'42["msg"'
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # a client's key needs no secrecy


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """One final, masked client frame (RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65_536:
        head = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    mask = os.urandom(4)
    if not n:
        return head + mask
    stream = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(stream, "big") ^ int.from_bytes(payload, "big")).to_bytes(n, "big")
    return head + mask + masked


def upgrade_request(host: str, port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


HEARTBEAT = client_frame(b'{"op":1,"d":null}')
SIO_CONNECT = client_frame(b"40")
SIO_PONG = client_frame(b"3")


def sent_ns(data: bytes, start: int, end: int) -> int | None:
    """The send time a message carries (``@@<ns>@@``), if any."""
    i = data.find(b"@@", start, end)
    if i < 0:
        return None
    j = data.find(b"@@", i + 2, end)
    return int(data[i + 2 : j]) if j > 0 else None


class Client(asyncio.Protocol):
    """One connection; ``kind`` decides how text frames are read."""

    __slots__ = (
        "beat",
        "buf",
        "close_code",
        "count",
        "kind",
        "opened",
        "ready",
        "request",
        "started",
        "token",
        "transport",
        "worker",
    )

    def __init__(self, worker: Worker, kind: str, request: bytes, token: str | None) -> None:
        self.worker = worker
        self.kind = kind
        self.request = request
        self.token = token
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.opened = False  # handshake done
        self.ready: asyncio.Future[float] | None = asyncio.get_running_loop().create_future()
        self.started = time.perf_counter()
        self.count = 0
        self.close_code: int | None = None
        self.beat: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self.beat is not None:
            self.beat.cancel()
        if self.ready is not None:
            if not self.ready.done():
                self.ready.set_exception(ConnectionError(f"closed {self.close_code}"))
            return
        self.worker.lost(self)

    def data_received(self, data: bytes) -> None:
        if self.buf:
            data = self.buf + data
            self.buf = b""
        i = 0
        if not self.opened:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.buf = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                self._fail("handshake " + data[:12].decode(errors="replace"))
                return
            self.opened = True
            i = end + 4
        n = len(data)
        now = 0
        while n - i >= 2:
            length = data[i + 1] & 0x7F
            h = 2
            if length == 126:
                if n - i < 4:
                    break
                length = int.from_bytes(data[i + 2 : i + 4], "big")
                h = 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(data[i + 2 : i + 10], "big")
                h = 10
            start = i + h
            end = start + length
            if end > n:
                break
            opcode = data[i] & 0x0F
            if opcode == 1:
                if self.ready is None and self._message(data, start):
                    self.count += 1
                    w = self.worker
                    if not w.frame_bytes:
                        w.frame_bytes = end - i
                    if w.recording:
                        if not now:
                            now = time.monotonic_ns()
                        w.last_ns = now
                        if not w.first_ns:
                            w.first_ns = now
                        if w.latency:
                            sent = sent_ns(data, start, end)
                            if sent is not None:
                                w.latencies.append((now - sent) // 1000)
                        if self.count == w.target:
                            w.reached()
                else:
                    self._control(data, start, end)
            elif opcode == 8:
                if length >= 2:
                    self.close_code = int.from_bytes(data[start : start + 2], "big")
                self.worker.codes[self.close_code] = self.worker.codes.get(self.close_code, 0) + 1
                if self.transport is not None:
                    self.transport.write(client_frame(data[start : start + 2], 8))
                    self.transport.close()
                return
            elif opcode == 9:
                if self.transport is not None:
                    self.transport.write(client_frame(data[start:end], 10))
            elif opcode != 10:
                self.worker.odd += 1  # binary or fragmented: none of our servers sends them
            i = end
        if i < n:
            self.buf = data[i:]

    # -- dialects -------------------------------------------------------------------------
    def _message(self, data: bytes, start: int) -> bool:
        """Is this text frame (a live one, after READY) a broadcast message?"""
        kind = self.kind
        if kind == "ws":
            return True
        if kind == "miaou":
            if data.startswith(MIAOU_MESSAGE, start):
                return True
            self.worker.other += 1
            return False
        if data.startswith(SIO_MESSAGE, start):
            return True
        if data[start : start + 1] == b"2" and self.transport is not None:
            self.transport.write(SIO_PONG)
        else:
            self.worker.other += 1
        return False

    def _control(self, data: bytes, start: int, end: int) -> None:
        """Text frames before READY (and Socket.IO pings after it)."""
        kind = self.kind
        transport = self.transport
        if transport is None:
            return
        if self.ready is None:  # Socket.IO ping after READY
            return
        if kind == "miaou":
            if data.startswith(MIAOU_HELLO, start):
                hello = json.loads(data[start:end])
                interval = hello["d"]["heartbeat_interval"] / 1000
                identify = {"op": 2, "d": {"token": self.token}}
                transport.write(client_frame(json.dumps(identify).encode()))
                self.beat = asyncio.get_running_loop().call_later(
                    interval * random.random(), self._heartbeat, interval
                )
            elif data.startswith(MIAOU_READY, start):
                self._ready()
            else:
                self.worker.other += 1
        elif kind == "ws":
            self._ready()  # the server's "hello": this connection is subscribed
        else:
            head = data[start : start + 2]
            if head == b"0{":
                transport.write(SIO_CONNECT)
            elif head == b"40":
                self._ready()
            elif head[:1] == b"2":
                transport.write(SIO_PONG)
            elif head[:2] == b"44":
                self._fail("socket.io connect refused")

    def _ready(self) -> None:
        ready, self.ready = self.ready, None
        if ready is not None and not ready.done():
            ready.set_result(time.perf_counter() - self.started)

    def _fail(self, why: str) -> None:
        if self.ready is not None and not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if self.transport is not None:
            self.transport.abort()

    def _heartbeat(self, interval: float) -> None:
        if self.transport is None:
            return
        self.transport.write(HEARTBEAT)
        self.beat = asyncio.get_running_loop().call_later(interval, self._heartbeat, interval)


class Worker:
    def __init__(self) -> None:
        self.clients: list[Client] = []
        self.target = 0
        self.done = 0
        self.recording = False
        self.latency = False
        self.latencies: list[int] = []
        self.first_ns = 0
        self.last_ns = 0
        self.complete = asyncio.Event()
        self.drops = 0
        self.codes: dict[int | None, int] = {}
        self.other = 0
        self.odd = 0
        self.frame_bytes = 0  # the size of one message frame, header included

    def reached(self) -> None:
        self.done += 1
        if self.done >= len(self.clients) - self.drops:
            self.complete.set()

    def lost(self, client: Client) -> None:
        self.drops += 1
        # A client that will never reach the target: let the others finish (the counts show
        # the shortfall).
        short = self.recording and client.count < self.target
        if short and self.done >= len(self.clients) - self.drops:
            self.complete.set()

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        kind, host, ports, path = cmd["kind"], cmd["host"], cmd["ports"], cmd["path"]
        count, concurrency = int(cmd["count"]), int(cmd.get("concurrency", 100))
        tokens: list[str | None] = [None] * count
        if cmd.get("tokens_file"):
            lines = (await asyncio.to_thread(Path(cmd["tokens_file"]).read_text)).split()
            # Connection ``start + i`` of the whole run is member ``(start + i) % members``.
            tokens = [lines[(cmd["start"] + i) % len(lines)] for i in range(count)]
        local = (cmd["local_host"], 0) if cmd.get("local_host") else None
        requests = {p: upgrade_request(host, p, path) for p in ports}
        gate = asyncio.Semaphore(concurrency)
        times: list[float] = []
        errors: dict[str, int] = {}
        deadline = time.perf_counter() + float(cmd.get("timeout", 600))

        async def one(i: int) -> None:
            port = ports[i % len(ports)]
            async with gate:
                client = Client(self, kind, requests[port], tokens[i])
                ready = client.ready  # the client drops it once ready, maybe before we look
                assert ready is not None
                left = deadline - time.perf_counter()
                try:
                    async with asyncio.timeout(max(left, 0.1)):
                        await loop.create_connection(lambda: client, host, port, local_addr=local)
                        times.append(await ready)
                except (OSError, ConnectionError, TimeoutError) as exc:
                    why = f"{type(exc).__name__}: {exc}"[:80]
                    errors[why] = errors.get(why, 0) + 1
                    if client.transport is not None:
                        client.transport.abort()
                    return
                self.clients.append(client)

        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(count)))
        seconds = time.perf_counter() - started
        times.sort()
        return {
            "connected": len(times),
            "failed": count - len(times),
            "errors": errors,
            "seconds": seconds,
            "ready_ms_p50": 1000 * times[len(times) // 2] if times else None,
            "ready_ms_p99": 1000 * times[min(len(times) - 1, len(times) * 99 // 100)]
            if times
            else None,
            "open": self.open(),
        }

    def open(self) -> int:
        return sum(1 for c in self.clients if c.transport is not None)

    def expect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        for client in self.clients:
            client.count = 0
        self.target = int(cmd["count"])
        self.done = 0
        self.latency = bool(cmd.get("latency"))
        self.latencies = []
        self.first_ns = self.last_ns = 0
        self.complete = asyncio.Event()
        self.recording = True
        return {}

    async def wait(self, cmd: dict[str, Any]) -> dict[str, Any]:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.complete.wait(), float(cmd.get("timeout", 120)))
        self.recording = False
        received = sum(c.count for c in self.clients)
        answer: dict[str, Any] = {
            "complete": self.complete.is_set() and self.done == len(self.clients),
            "received": received,
            "expected": self.target * len(self.clients),
            "short": sum(1 for c in self.clients if c.count < self.target),
            "first_ns": self.first_ns,
            "last_ns": self.last_ns,
            "drops": self.drops,
        }
        if self.latency:
            answer["latencies_us"] = self.latencies
        return answer

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "open": self.open(),
            "drops": self.drops,
            "close_codes": {str(k): v for k, v in self.codes.items()},
            "other_frames": self.other,
            "odd_frames": self.odd,
            "message_frame_bytes": self.frame_bytes,
        }

    def close(self) -> None:
        for client in self.clients:
            if client.transport is not None:
                client.transport.abort()


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = Worker()
    out = sys.stdout
    while line := await reader.readline():
        cmd = json.loads(line)
        op = cmd["op"]
        if op == "connect":
            answer = await worker.connect(cmd)
        elif op == "expect":
            answer = worker.expect(cmd)
        elif op == "wait":
            answer = await worker.wait(cmd)
        elif op == "stats":
            answer = worker.stats()
        elif op == "close":
            worker.close()
            out.write("{}\n")
            out.flush()
            await asyncio.sleep(0.2)
            return
        else:
            answer = {"error": f"unknown op {op}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


def raise_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main() -> None:
    raise_file_limit()
    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


if __name__ == "__main__":
    main()
