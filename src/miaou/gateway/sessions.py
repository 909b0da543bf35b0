"""Starting and ending gateway sessions: IDENTIFY -> READY, RESUME -> replay, presence.

:class:`Gateway` is what a node process owns: the hub, the READY reader, and the presence
book (this process's counts, or the cluster's through Redis).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

import structlog

from miaou import ids
from miaou.accounts.service import AccountService, Principal
from miaou.chat.outbox import Outbox, guild_id_of
from miaou.config import Settings
from miaou.errors import Unauthorized
from miaou.gateway.deadlines import Deadlines
from miaou.gateway.frames import CloseCode, dispatch_frame, encode
from miaou.gateway.guild_view import GuildView
from miaou.gateway.hub import Hub
from miaou.gateway.presence import Presence
from miaou.gateway.protocol import Identify, Resume
from miaou.gateway.ready import ReadyReader
from miaou.gateway.transport import Session, loop_ms

log = structlog.get_logger("miaou.gateway")

SHOWN = {"online": "online", "idle": "idle", "dnd": "dnd", "invisible": "offline"}
LARGE_GUILD = 250  # members; past it no presence updates (Discord's large_threshold)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        accounts: AccountService,
        outbox: Outbox,
        ready: ReadyReader,
        presence: Presence,
    ) -> None:
        self.settings = settings
        #: Unsent bytes a connection may hold (read on every flush: one attribute away).
        self.send_buffer_bytes = settings.gateway_send_buffer_bytes
        self.presence_book = presence
        #: Called with a user id when their last session anywhere ended.
        self.on_offline: Callable[[int], Awaitable[object]] | None = None
        self.accounts = accounts
        self.outbox = outbox
        self.ready_reader = ready
        self.hub = Hub(outbox.db, outbox.bus)
        #: Every connection's deadline on one loop timer.
        self.deadlines = Deadlines()
        #: Counters for metrics and tests.
        self.connections = 0
        self.slow_consumers = 0
        self.sessions_started = 0
        self.resumes = 0
        self.invalid_sessions = 0

    def stats(self) -> dict[str, int]:
        """Figures for ``/metrics`` (``miaou.observability.GATEWAY_METRICS``)."""
        return {
            "connections": self.connections,
            "streams": len(self.hub.streams),
            "deliveries": self.hub.deliveries,
            "sessions_started": self.sessions_started,
            "resumes": self.resumes,
            "invalid_sessions": self.invalid_sessions,
            "slow_consumers": self.slow_consumers,
        }

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self.hub.spawn(coro)

    # -- IDENTIFY / RESUME -------------------------------------------------------------------
    async def start(self, session: Session, request: Identify | Resume) -> None:
        loop = asyncio.get_running_loop()
        try:
            principal = await self.accounts.authenticate(request.token)
        except Unauthorized:
            session.conn.close(CloseCode.AUTHENTICATION_FAILED, loop_ms(loop))
            session.flush()
            return
        except Exception:
            log.exception("gateway_authenticate_failed")
            session.conn.close(CloseCode.UNKNOWN_ERROR, loop_ms(loop))
            session.flush()
            return
        if not session.open:
            return
        session.user_id = principal.user_id
        # The worker number leads (three hex digits): which process served it, for logs.
        session.session_id = f"{ids.id_worker(ids.new_id()):03x}{secrets.token_hex(8)}"
        if isinstance(request, Identify):
            session.status = request.status
        try:
            await self._begin(session, principal, request)
        except Exception:
            log.exception("gateway_session_start_failed", user_id=principal.user_id)
            self.hub.unsubscribe(session)
            session.held = None
            session.conn.close(CloseCode.UNKNOWN_ERROR, loop_ms(loop))
            session.flush()

    async def _begin(
        self, session: Session, principal: Principal, request: Identify | Resume
    ) -> None:
        user_id = principal.user_id
        names = await self.ready_reader.streams(user_id)
        streams = await self.hub.follow(names)
        if isinstance(request, Resume):
            await self.hub.reach(streams, request.positions)
        if not session.open:
            return
        session.hold()
        marks = self.hub.subscribe(session, streams)
        # A guild joined (or DM opened) after the list was read and before the user stream
        # was subscribed: its GUILD_JOIN is behind the mark, so no live event would make
        # the session follow it. Read the list again now that the marks are set.
        later = [n for n in await self.ready_reader.streams(user_id) if n not in marks]
        if later:
            extra = await self.hub.follow(later)
            marks |= self.hub.subscribe(session, extra)
            streams += extra
        if isinstance(request, Identify):
            views = {s.view.guild_id: s.view for s in streams if s.view is not None}
            ready = await self.ready_reader.ready(principal, session.session_id, marks, views)
            await self._list_presences(ready["guilds"], views)
            frames = [dispatch_frame("READY", encode(ready), None, None)]
        else:
            stale: set[str] = set()
            replayed = await self.hub.replay(session, request.positions, marks, stale)
            if replayed is None:
                self.invalid_sessions += 1
                self.hub.unsubscribe(session)
                session.held = None
                session.conn.invalid_session(loop_ms(asyncio.get_running_loop()))
                session.flush()
                return
            self.resumes += 1
            fresh = {name: at for name, at in marks.items() if name not in request.positions}
            # The replay re-sends rule changes but not the CHANNEL_CREATE / DELETE they made
            # live (channel_sight): the client re-reads these guilds' channels.
            refetch = sorted(str(g) for name in stale if (g := guild_id_of(name)) is not None)
            resumed = dispatch_frame(
                "RESUMED", encode({"positions": fresh, "refetch_channels": refetch}), None, None
            )
            frames = [*replayed, resumed]
        if not session.open:
            self.hub.unsubscribe(session)
            return
        held, session.held = session.held or [], None
        session.conn.accept_session(frames[0], loop_ms(asyncio.get_running_loop()))
        for frame in frames[1:]:
            session.conn.send(frame)
        for frame in held:
            session.conn.send(frame)
        session.flush()
        self.sessions_started += 1
        session.counted = True
        first = await self.presence_book.arrive(user_id)
        if first and session.status != "invisible":  # invisible: shown offline, as before
            await self.presence_book.set_status(user_id, SHOWN[session.status])
            await self._announce(session.user_id, self._guilds(session), SHOWN[session.status])

    # -- presence ---------------------------------------------------------------------------
    @staticmethod
    def _guilds(session: Session) -> list[str]:
        return [name for name in session.streams if name.startswith("guild:")]

    async def _list_presences(
        self, guilds: list[dict[str, Any]], views: Mapping[int, GuildView]
    ) -> None:
        """Each guild of READY lists its members who are online and how they are shown
        (Discord's ``presences``), except large guilds, which get no presence at all.
        PRESENCE_UPDATEs from the moment the session subscribed follow READY."""
        members = {
            guild_id: view.member_ids()
            for guild_id, view in views.items()
            if view.member_count <= LARGE_GUILD
        }
        wanted: set[int] = set().union(*members.values()) if members else set()
        shown = await self.presence_book.statuses(wanted) if wanted else {}
        for guild in guilds:
            in_guild = members.get(int(guild["id"]), ())
            guild["presences"] = [
                {"user": {"id": str(u)}, "status": shown[u]} for u in in_guild if u in shown
            ]

    def presence(self, session: Session, status: str) -> None:
        session.status = status
        self.spawn(self._set_presence(session.user_id, self._guilds(session), SHOWN[status]))

    async def _set_presence(self, user_id: int, guilds: list[str], shown: str) -> None:
        await self.presence_book.set_status(user_id, shown)
        await self._announce(user_id, guilds, shown)

    async def _announce(self, user_id: int, guilds: list[str], shown: str) -> None:
        """PRESENCE_UPDATE to each guild, except large ones: there every member's arrival
        would reach every member (N² frames); their clients ask REST (Discord's rule)."""
        payload = {"user": {"id": str(user_id)}, "status": shown}
        for name in guilds:
            stream = self.hub.streams.get(name)
            if stream is None or stream.view is None or stream.view.member_count > LARGE_GUILD:
                continue
            guild_id = name.partition(":")[2]
            event = self.outbox.event("PRESENCE_UPDATE", name, {**payload, "guild_id": guild_id})
            await self.outbox.announce(event)

    def ended(self, session: Session) -> None:
        guilds = self._guilds(session)
        self.hub.unsubscribe(session)
        if session.counted:
            session.counted = False
            self.spawn(self._gone(session.user_id, guilds, session.status != "invisible"))

    async def _gone(self, user_id: int, guilds: list[str], shown: bool) -> None:
        """A session ended: if it was the user's last anywhere, they are offline, and leave
        the guilds they joined temporarily (Discord's rule: unless given a role)."""
        try:
            if not await self.presence_book.leave(user_id):
                return
            if shown:
                await self._announce(user_id, guilds, "offline")
            if self.on_offline is not None:
                await self.on_offline(user_id)
        except Exception:
            log.exception("gateway_session_end_failed", user_id=user_id)

    async def close(self) -> None:
        await self.hub.close()  # cancels the sessions' tasks too (they run on the hub)
        self.deadlines.close()
