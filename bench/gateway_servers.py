"""The servers the gateway benchmark drives, each in its own process, and their senders.

A :class:`Target` is one server under test: its process id (for /proc CPU and memory; with
``miaou serve --workers N`` its children's too, see :attr:`Target.pids`), the port it
listens on, the dialect its clients speak, how to make N members,
and how to send a message to the channel they are in.

- :class:`MiaouTarget`: ``miaou serve`` on SQLite in a temporary directory (rate limits off,
  a longer heartbeat interval if asked), its stderr kept in a log file that is scanned for
  errors at the end; or, given a :class:`Cluster`, ``miaou serve --workers N`` on a fresh
  PostgreSQL database and Redis, whose CPU (``INFO cpu``) is counted with the workers'.
  Members are made with SQL through the node's own tables (users, sessions with real
  token hashes, one guild, its @everyone role and one text channel): no argon2 per user.
  A message is a REST send (``POST /api/v1/channels/{id}/messages``) by the guild's
  owner, who holds no gateway connection; requests are pipelined over a few keep-alive
  connections so that the send schedule does not wait for answers.
- :class:`ContenderTarget`: ``python -m bench.gateway_contenders KIND PORT``; a message is a
  text frame from a sender connection (``/send``, or a Socket.IO client that emits
  ``send``), broadcast by the server to every subscribed client.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_accounts import drop_postgres_database, fresh_postgres_database
from bench.gateway_load import client_frame, upgrade_request
from bench.node_process import cpu_seconds, wait_ready

HOST = "127.0.0.1"
# Extra interpreter flags for the node (none: it runs as `miaou serve` does).
NODE_PYTHON_FLAGS: tuple[str, ...] = ()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS, KiB)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def write_calls(pid: int) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("syscw:"):
            return int(line.split()[1])
    return 0


def _or_zero(read: Any, pid: int) -> Any:
    try:
        return read(pid)
    except OSError:
        return 0  # the process ended between listing and reading


def descendants(pid: int) -> list[int]:
    """Child processes, recursively, found by their parent id in ``/proc/<pid>/stat``."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def stop_process(proc: subprocess.Popen[Any], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it does not exit in time (by PID: only what we started)."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


class Target:
    name: str
    kind: str  # the load generator's dialect: "miaou", "ws" or "sio"
    path: str
    proc: subprocess.Popen[Any]
    ports: list[int]

    @property
    def pids(self) -> list[int]:
        """The server's process and its descendants (``miaou serve --workers N`` serves from
        N children of a supervisor): CPU and memory are summed over all of them."""
        return [self.proc.pid, *descendants(self.proc.pid)]

    def cpu(self) -> float:
        """CPU seconds (user + system) used so far by the serving processes."""
        return sum(_or_zero(cpu_seconds, pid) for pid in self.pids)

    def writes(self) -> int:
        """Write-family syscalls so far (``syscw`` of /proc/<pid>/io: write and writev, which
        uvloop's transports use; SQLite's writes count too)."""
        return sum(_or_zero(write_calls, pid) for pid in self.pids)

    def rss(self) -> int:
        """Resident memory of the serving processes, KiB."""
        return sum(_or_zero(rss_kib, pid) for pid in self.pids)

    def spread(self) -> list[int]:
        """Open file descriptors of each serving process that has children's share of the
        connections (the workers of ``--workers N``); empty for a single process."""
        workers = descendants(self.proc.pid)
        counts = []
        for pid in workers:
            with contextlib.suppress(OSError):
                counts.append(len(os.listdir(f"/proc/{pid}/fd")))
        return sorted(counts) if len(counts) > 1 else []

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def members(self, count: int, workdir: Path) -> Path | None:
        """Make ``count`` members able to connect; a file of their tokens, if they need one."""
        return None

    def sender(self) -> Sender:
        raise NotImplementedError

    def stop(self) -> None:
        stop_process(self.proc)

    def problems(self) -> list[str]:
        return []


class Sender:
    """Writes messages at the moments the caller chooses; :meth:`finish` checks answers."""

    sent = 0

    async def open(self) -> None: ...

    def send(self, text: str) -> None: ...

    async def finish(self, wait_s: float) -> dict[str, Any]:
        return {"sent": self.sent}


# -- Miaou ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    """``miaou serve --workers N`` on PostgreSQL and Redis (a fresh database per run)."""

    workers: int
    postgres_url: str  # the server's URL; the run makes its own database there and drops it
    redis_url: str
    # The node's PostgreSQL connections, shared by the workers: 32 is 4 per worker at 8
    # (8 at peaks, 64 in all) under PostgreSQL's default max_connections of 100.
    database_pool_size: int = 32


class MiaouTarget(Target):
    kind = "miaou"
    path = "/gateway"

    def __init__(
        self, port: int, heartbeat_ms: int | None, cluster: Cluster | None = None,
        database_url: str | None = None,
    ) -> None:  # fmt: skip
        self.name = "miaou"
        self.ports = [port]
        self.url = f"http://{HOST}:{port}"
        self.cluster = cluster
        self._data = tempfile.TemporaryDirectory(prefix="miaou-bench-gw-")
        data = Path(self._data.name)
        self.log_path = data / "node.log"
        self.database_url = database_url or f"sqlite:///{data / 'miaou.db'}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIAOU_")}
        env.update(
            MIAOU_RATELIMIT__ENABLED="false",
            MIAOU_LOG_LEVEL="warning",
            MIAOU_LOG_JSON="true",
            MIAOU_DATABASE_URL=self.database_url,
        )
        command = [sys.executable, *NODE_PYTHON_FLAGS, "-m", "miaou.cli", "serve", "--port",
                   str(port), "--data-dir", str(data)]  # fmt: skip
        if cluster is not None:
            env["MIAOU_REDIS_URL"] = cluster.redis_url
            env["MIAOU_REDIS_NAMESPACE"] = f"bench-gw-{os.getpid()}-{port}"
            env["MIAOU_DATABASE_POOL_SIZE"] = str(cluster.database_pool_size)
            command += ["--workers", str(cluster.workers)]
        if heartbeat_ms:
            env["MIAOU_GATEWAY_HEARTBEAT_MS"] = str(heartbeat_ms)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            command, env=env, cwd=data, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.channel_id = 0
        self.owner_token = ""

    def cpu(self) -> float:
        """The serving processes' CPU, plus Redis's in cluster mode (it carries every event
        to every worker; PostgreSQL's is not counted, as SQLite's is the node's own)."""
        return super().cpu() + (redis_cpu(self.cluster.redis_url) if self.cluster else 0.0)

    async def start(self) -> None:
        await wait_ready(self.url)

    async def members(self, count: int, workdir: Path) -> Path:
        self.channel_id, self.owner_token, tokens = await seed(self.database_url, count)
        path = workdir / "tokens.txt"
        path.write_text("\n".join(tokens) + "\n")
        return path

    def sender(self) -> Sender:
        return RestSender(self.ports[0], self.channel_id, self.owner_token)

    def stop(self) -> None:
        # The supervisor gives its workers 30 s before it kills them: wait for it.
        stop_process(self.proc, timeout=60)
        self._log.close()

    def problems(self) -> list[str]:
        """Warning and error lines the node logged (its log level is ``warning``), and
        anything else it printed but its start-up line."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [
            line
            for line in lines
            if line.strip() and not (line.startswith("miaou ") and " listening on " in line)
        ]

    async def cleanup(self) -> None:
        self._data.cleanup()
        if self.cluster is not None:
            await drop_postgres_database(self.cluster.postgres_url, self.database_url)


def redis_cpu(url: str) -> float:
    """CPU seconds the Redis server has used (all its clients: run nothing else meanwhile)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        info = client.info("cpu")
    finally:
        client.close()
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


async def seed(database_url: str, count: int) -> tuple[int, str, list[str]]:
    """One guild with an owner (the sender) and ``count`` members with session tokens, made
    with SQL in one transaction: (channel id, the owner's token, the members' tokens)."""
    from argon2 import PasswordHasher

    from miaou import ids
    from miaou.accounts.tokens import new_token, token_hash
    from miaou.chat.models import ChannelType
    from miaou.chat.permissions import Permission as P
    from miaou.chat.tables import channels, guilds, members, roles
    from miaou.config import normalise_database_url
    from miaou.db.engine import Database
    from miaou.db.metadata import sessions, users
    from miaou.ids import now_ms

    # Nobody logs in with a password here; one cheap hash stands for all of them.
    password_hash = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("unused-pw")
    now = now_ms()
    people = [(ids.new_id(), new_token()) for _ in range(count + 1)]
    user_rows = [
        {"id": uid, "username": f"gw{i}", "username_key": f"gw{i}", "display_name": None,
         "bio": "", "password_hash": password_hash, "created_at": now, "updated_at": now}
        for i, (uid, _) in enumerate(people)
    ]  # fmt: skip
    session_rows = [
        {"id": ids.new_id(), "user_id": uid, "token_hash": token_hash(token), "created_at": now,
         "last_used_at": now, "user_agent": "bench", "ip": "127.0.0.1"}
        for uid, token in people
    ]  # fmt: skip
    owner = people[0][0]
    guild_id, channel_id = ids.new_id(), ids.new_id()
    everyone = P.VIEW_CHANNEL | P.SEND_MESSAGES | P.READ_MESSAGE_HISTORY
    db = Database(normalise_database_url(database_url))
    try:
        async with db.write() as conn:
            for start in range(0, len(user_rows), 2000):
                await conn.execute(users.insert(), user_rows[start : start + 2000])
                await conn.execute(sessions.insert(), session_rows[start : start + 2000])
            await conn.execute(
                guilds.insert().values(
                    id=guild_id, name="bench", owner_id=owner, created_at=now, updated_at=now
                )
            )
            await conn.execute(
                roles.insert().values(id=guild_id, guild_id=guild_id, name="@everyone",
                                      permissions=int(everyone), created_at=now)
            )  # fmt: skip
            await conn.execute(
                channels.insert().values(id=channel_id, guild_id=guild_id, name="general",
                                         type=int(ChannelType.GUILD_TEXT), created_at=now)
            )  # fmt: skip
            member_rows = [
                {"guild_id": guild_id, "user_id": uid, "joined_at": now} for uid, _ in people
            ]
            for start in range(0, len(member_rows), 2000):
                await conn.execute(members.insert(), member_rows[start : start + 2000])
    finally:
        await db.close()
    return channel_id, people[0][1], [token for _, token in people[1:]]


class RestSender(Sender):
    """Pipelined ``POST /api/v1/channels/{id}/messages`` over a few keep-alive connections;
    a reader per connection counts the answers (every one must be 200)."""

    CONNECTIONS = 8

    def __init__(self, port: int, channel_id: int, token: str) -> None:
        self.port = port
        self.head = (
            f"POST /api/v1/channels/{channel_id}/messages HTTP/1.1\r\nhost: {HOST}\r\n"
            f"authorization: Bearer {token}\r\ncontent-type: application/json\r\n"
        ).encode()
        self.sent = 0
        self.ok = 0
        self.failed = 0
        self.statuses: dict[int, int] = {}
        self.acks_ms: list[float] = []  # send -> HTTP answer, per request
        self._pending: list[list[float]] = []  # send times awaiting an answer, per connection
        self._answered = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self._readers: list[asyncio.Task[None]] = []

    async def open(self) -> None:
        for i in range(self.CONNECTIONS):
            reader, writer = await asyncio.open_connection(HOST, self.port)
            self._writers.append(writer)
            self._pending.append([])
            self._readers.append(asyncio.create_task(self._read(reader, self._pending[i])))

    async def _read(self, reader: asyncio.StreamReader, pending: list[float]) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                self.acks_ms.append((time.perf_counter() - pending.pop(0)) * 1000)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 200:
                    self.ok += 1
                else:
                    self.failed += 1
                if self.ok + self.failed >= self.sent:
                    self._answered.set()

    def send(self, text: str) -> None:
        body = b'{"content":"' + text.encode() + b'"}'
        request = self.head + b"content-length: %d\r\n\r\n" % len(body) + body
        i = self.sent % len(self._writers)
        self._pending[i].append(time.perf_counter())
        self._writers[i].write(request)
        self.sent += 1
        self._answered.clear()

    async def finish(self, wait_s: float) -> dict[str, Any]:
        if self.ok + self.failed < self.sent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), wait_s)
        for writer in self._writers:
            writer.close()
        for task in self._readers:
            task.cancel()
        acks = sorted(self.acks_ms)
        return {"sent": self.sent, "ok": self.ok, "failed": self.failed,
                "ack_ms_p50": acks[len(acks) // 2] if acks else None,
                **{f"status_{k}": v for k, v in self.statuses.items() if k != 200}}  # fmt: skip


# -- contenders -----------------------------------------------------------------------------
class ContenderTarget(Target):
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.ports = [port]
        self.kind = "sio" if name == "socketio" else "ws"
        self.path = "/socket.io/?EIO=4&transport=websocket" if name == "socketio" else "/"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.gateway_contenders", name, str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    async def start(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(self.proc.stdout.readline), 30)
        if line.strip() != b"ready":
            raise RuntimeError(f"{self.name} did not start: {line!r}")

    def sender(self) -> Sender:
        if self.name == "socketio":
            return WsSender(self.ports[0], self.path + "&sender=1", socketio=True)
        return WsSender(self.ports[0], "/send", socketio=False)


class WsSender(Sender):
    """One WebSocket connection that sends each message as one text frame (Socket.IO: an
    ``emit("send", text)``); a reader answers the server's pings."""

    def __init__(self, port: int, path: str, *, socketio: bool) -> None:
        self.port = port
        self.path = path
        self.socketio = socketio
        self.sent = 0
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        reader, writer = await asyncio.open_connection(HOST, self.port)
        writer.write(upgrade_request(HOST, self.port, self.path))
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"sender handshake failed: {head[:40]!r}")
        self._writer = writer
        if self.socketio:
            opening = await self._frame(reader)  # 0{...}
            assert opening.startswith(b"0{"), opening
            writer.write(client_frame(b"40"))
            while not (await self._frame(reader)).startswith(b"40"):
                pass
        self._reader = asyncio.create_task(self._pings(reader, writer))

    @staticmethod
    async def _frame(reader: asyncio.StreamReader) -> bytes:
        """One whole unmasked server frame's payload; pings come back as b'\\x09' + data."""
        b0, b1 = await reader.readexactly(2)
        length = b1 & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        data = await reader.readexactly(length)
        return bytes((9,)) + data if b0 & 0x0F == 9 else data

    async def _pings(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                data = await self._frame(reader)
                if data[:1] == b"\x09":
                    writer.write(client_frame(data[1:], 10))
                elif self.socketio and data == b"2":
                    writer.write(client_frame(b"3"))

    def send(self, text: str) -> None:
        assert self._writer is not None
        data = text.encode()
        payload = b'42["send","' + data + b'"]' if self.socketio else data
        self._writer.write(client_frame(payload))
        self.sent += 1

    async def finish(self, wait_s: float) -> dict[str, Any]:
        if self._writer is not None:
            await self._writer.drain()
            self._writer.close()
        if self._reader is not None:
            self._reader.cancel()
        return {"sent": self.sent}


async def start_target(
    name: str, port: int, heartbeat_ms: int | None, cluster: Cluster | None = None
) -> Target:
    target: MiaouTarget | ContenderTarget
    if name == "miaou":
        database_url = None
        if cluster is not None:
            database_url = await fresh_postgres_database(cluster.postgres_url)
        target = MiaouTarget(port, heartbeat_ms, cluster, database_url)
    else:
        target = ContenderTarget(name, port)
    try:
        await target.start()
    except BaseException:
        target.stop()
        if isinstance(target, MiaouTarget):
            await target.cleanup()
        raise
    return target
