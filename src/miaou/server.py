"""Serving a node with uvicorn on a socket we bind ourselves.

Binding first lets us report "port in use" as a clear configuration error (uvicorn would log
and exit), and lets tests ask for port 0 and learn the port the kernel chose.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import AsyncIterator

import uvicorn

from miaou.app import Node
from miaou.audio import segment_protocol
from miaou.errors import ConfigError
from miaou.gateway.transport import protocol_class
from miaou.observability.heap import freeze_startup_objects


def bind_socket(
    host: str, port: int, *, reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A socket bound to ``host:port``; a taken port is a :class:`ConfigError`.
    ``reuse_port``: several processes may bind the port, each listening on its own socket,
    and the kernel spreads new connections evenly among them (SO_REUSEPORT)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is already in use") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    if listen:
        sock.listen(2048)
    sock.setblocking(False)
    return sock


GRACEFUL_STOP_S = 20
KEEP_ALIVE_S = 20


def uvicorn_config(node: Node) -> uvicorn.Config:
    return uvicorn.Config(
        node.asgi,
        loop="uvloop",
        # httptools' protocol, answering repeat HLS segment requests itself (segment_protocol).
        http=segment_protocol.protocol_class(node),
        ws=protocol_class(node.gateway),  # the gateway's own protocol class (transport.py)
        ws_max_size=65_536,
        lifespan="on",
        log_config=None,  # our structlog setup handles uvicorn's loggers
        access_log=False,  # one line per request comes from our middleware
        server_header=False,
        proxy_headers=False,
        # A stop waits this long for connections to close (gateway sessions get RECONNECT
        # and a close frame), then cancels what is left: a stuck peer cannot hold a
        # stopping process (and with --workers, its share of the port) for ever.
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
        # An HLS player asks for the next ~6 s segment every ~6 s: uvicorn's default 5 s
        # keep-alive would make every one of those requests a new connection.
        timeout_keep_alive=KEEP_ALIVE_S,
    )


class _ServedProcess(uvicorn.Server):
    """The server of a process that serves one node until it exits."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        # What startup made lives as long as the process: out of the collector's walks.
        freeze_startup_objects()


def serve_forever(node: Node, sock: socket.socket) -> None:
    """Run until SIGINT/SIGTERM (uvicorn handles both and shuts down gracefully)."""
    server = _ServedProcess(uvicorn_config(node))
    server.run(sockets=[sock])
    if not server.started:
        raise ConfigError("the node failed to start; see the log above")


class RunningNode:
    """A node served in the current event loop (tests, benchmarks)."""

    def __init__(
        self, node: Node, server: uvicorn.Server, task: asyncio.Task[None], sock: socket.socket
    ) -> None:
        self.node = node
        self.server = server
        self.port: int = sock.getsockname()[1]
        self.url = f"http://{node.settings.host}:{self.port}"
        self._task = task
        self._sock = sock

    async def stop(self) -> None:
        """Graceful shutdown, as on SIGTERM; safe to call twice."""
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(self._task), timeout=10)
        self._sock.close()


@contextlib.asynccontextmanager
async def running(node: Node) -> AsyncIterator[RunningNode]:
    """Serve ``node`` in this event loop until the block exits."""
    sock = bind_socket(node.settings.host, node.settings.port)
    server = uvicorn.Server(uvicorn_config(node))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    handle = RunningNode(node, server, task, sock)
    try:
        for _ in range(500):  # up to 10 s
            if server.started or task.done():
                break
            await asyncio.sleep(0.02)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("node did not start")
        yield handle
    finally:
        await handle.stop()
