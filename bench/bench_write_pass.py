"""One broadcast's write pass alone: N loopback connections, one frame to each.

The send-to-receipt benchmarks (``bench_gateway_turns``) see a write pass through the
whole machine's noise (the pass itself moved 13-17.5 ms between runs of one sitting), so
a change of a few per cent in the server's per-recipient work is lost there. Here the pass
is timed alone: real ``Session`` objects of the gateway (``protocol_class`` over a minimal
gateway) on uvloop TCP transports to a reader process that only drains its sockets, and
passes of one 600-byte frame alternate between the ways the hub writes:

- ``write_now``: one ``Session.write_now`` per recipient (a plain list of recipients);
- ``audience``: ``Audience.write``, the transports of the sessions that take frames now
  in one loop (what the hub does for a channel's recipients).

    python -m bench.bench_write_pass --connections 1000 --passes 400
"""

from __future__ import annotations

import argparse
import asyncio
import os
import selectors
import socket
import statistics
import sys
import time
from types import SimpleNamespace
from typing import Any

import uvloop

from miaou.bus.memory import MemoryBus
from miaou.gateway.audience import Audience
from miaou.gateway.deadlines import Deadlines
from miaou.gateway.hub import Hub
from miaou.gateway.protocol import State
from miaou.gateway.transport import Session, protocol_class

FRAME = b"x" * 600
PAUSE_S = 0.01  # between passes: the reader drains what the last one wrote


def drain(listener: socket.socket, connections: int) -> None:
    """The reader process: accept, then read until every peer has closed."""
    selector = selectors.EpollSelector()
    for _ in range(connections):
        conn, _ = listener.accept()
        conn.setblocking(False)
        selector.register(conn, selectors.EVENT_READ)
    open_ = connections
    while open_:
        for key, _ in selector.select(timeout=30):
            sock: Any = key.fileobj
            try:
                if not sock.recv(65_536):
                    selector.unregister(sock)
                    sock.close()
                    open_ -= 1
            except (BlockingIOError, ConnectionResetError):
                pass


async def sessions(port: int, connections: int) -> list[Session]:
    loop = asyncio.get_running_loop()
    gateway: Any = SimpleNamespace(
        settings=SimpleNamespace(gateway_heartbeat_ms=41_250),
        hub=Hub(None, MemoryBus()),  # type: ignore[arg-type]
        deadlines=Deadlines(), send_buffer_bytes=1 << 20, slow_consumers=0, connections=0,
        ended=lambda session: None,
    )  # fmt: skip
    cls = protocol_class(gateway)
    made = []
    for _ in range(connections):
        _, session = await loop.create_connection(cls, "127.0.0.1", port)
        session.conn.ws = None
        session.conn.state = State.AUTHENTICATING  # as after a good IDENTIFY
        session.conn.accept_session(b"READY", 0)
        session.conn.data_to_send()
        session.write_pushed()  # READY, nothing queued: it takes frames straight away
        made.append(session)
    return made


async def measure(port: int, connections: int, passes: int) -> dict[str, list[float]]:
    made = await sessions(port, connections)
    audience = Audience(made)
    times: dict[str, list[float]] = {"write_now": [], "audience": []}
    for i in range(passes):
        way = "audience" if i % 2 else "write_now"
        start = time.perf_counter()
        if way == "audience":
            audience.write(FRAME)
        else:
            for session in made:
                session.write_now(FRAME)
        times[way].append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(PAUSE_S)
    for session in made:
        if session.transport is not None:
            session.transport.close()
    await asyncio.sleep(0.1)
    return times


def main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_write_pass", description=__doc__)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=400)
    a = ap.parse_args(argv)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    port = listener.getsockname()[1]
    pid = os.fork()
    if pid == 0:
        try:
            drain(listener, a.connections)
        finally:
            os._exit(0)
    listener.close()
    try:
        times = uvloop.run(measure(port, a.connections, a.passes))
    finally:
        os.waitpid(pid, 0)
    med = {way: statistics.median(values) for way, values in times.items()}
    print(f"{a.connections} connections, {a.passes // 2} passes each way, alternated")
    for way, values in times.items():
        p90 = sorted(values)[int(0.9 * len(values))]
        print(f"{way:<10} median {med[way]:.2f} ms  p90 {p90:.2f} ms")
    print(f"audience / write_now: {med['audience'] / med['write_now']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
