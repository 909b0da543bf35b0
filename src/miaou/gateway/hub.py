"""Fan-out in one process: bus events -> encoded once -> every session that may see them.

The hub follows the streams its sessions need (``guild:``, ``user:``, ``channel:``); events
of other streams are dropped on arrival. Per event: the frame is encoded once; a guild's
:class:`GuildView` is updated from the event in stream order, so the event after a rule
change is filtered by the new rules; the same bytes go to every recipient when the loop pass
ends: written at once when the pass sent one frame, queued per connection and written in one
write when it sent several (see ``transport.Session``). An event that changes no rule (a
message, a reaction) goes to the recipients of the last one in its channel, kept per stream
until the subscribers or the rules change. A rule change is followed, for each member whose
sight of channels it changed, by CHANNEL_CREATE / CHANNEL_DELETE made for them
(``channel_sight``; not kept in the window).

Sessions join a stream *holding*: live frames queue aside while their READY or replay is
built from the database, then go out after it, so nothing falls between the snapshot and
the live flow and nothing is sent twice (the replay stops at the position where holding
began).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import msgspec
import structlog

from miaou.bus import Bus, Event, log
from miaou.chat.outbox import guild_id_of
from miaou.db.engine import Database
from miaou.gateway import gating
from miaou.gateway.audience import Audience
from miaou.gateway.channel_sight import SIGHT_EVENTS, WATCHED, Before, ChannelBook, changes_sight
from miaou.gateway.frames import dispatch_frame, encode
from miaou.gateway.guild_view import RULE_EVENTS, GuildView, read_guild
from miaou.gateway.streams import GAP_WAIT_MS, Sent, Stream
from miaou.ids import now_ms

if TYPE_CHECKING:
    from miaou.gateway.transport import Session

log_ = structlog.get_logger("miaou.gateway")

NO_CHANNEL = -1  # a channel id no one can view
FORGET_AFTER_S = 60.0
# Recipient lists kept per guild stream (one per channel with recent traffic), at most.
MAX_AUDIENCES = 64


def _window_channel(rule: gating.Gate) -> int | None:
    """What a replay checks: None for every member, else VIEW_CHANNEL on this channel
    (``NO_CHANNEL`` for events nobody may receive)."""
    if rule.scope is gating.Scope.MEMBERS:
        return None
    return rule.channel_id if rule.channel_id is not None else NO_CHANNEL


def follow_of(payload: Any) -> tuple[str, int] | None:
    """(stream, position) of an event that makes its recipient follow a stream from that
    position on (the ``follow`` the log stamps, ``miaou.bus.log``); None for other events."""
    follow = payload.get("follow") if isinstance(payload, dict) else None
    if not isinstance(follow, dict):
        return None
    stream, position = follow.get("stream"), follow.get("position")
    if not isinstance(stream, str) or type(position) is not int or position < 0:
        return None
    return stream, position


def _sight_among(sent: list[Sent], up_to: int) -> bool:
    """Whether an event of ``sent`` up to position ``up_to`` may have changed who sees
    which channel."""
    return any(item.sight for item in sent if item.position <= up_to)


def _listed_channels(payload: Any) -> frozenset[int] | None:
    """The ids of the channels a GUILD_JOIN / GUILD_CREATE lists (what its recipient was
    shown); None for an event that lists none (a DM's CHANNEL_CREATE)."""
    listed = gating.field(payload, "channels")
    if not isinstance(listed, list | tuple):
        return None
    ids = (gating.to_id(gating.field(channel, "id")) for channel in listed)
    return frozenset(i for i in ids if i is not None)


def _sight_since(session: Session, stream: Stream, shown: frozenset[int]) -> list[bytes]:
    """CHANNEL_DELETE / CHANNEL_CREATE for the channels a joiner sees now and was not shown
    at the join, or the reverse (a rule changed before their session followed the stream).
    A channel created since the join may be announced twice (the replay's own
    CHANNEL_CREATE, then this one): CHANNEL_CREATE is an upsert for clients."""
    if stream.view is None or stream.book is None:
        return []
    before = Before([shown])
    found = stream.book.derived(stream.view, before, [session.user_id], now_ms(), stream.name)
    return next((frames for _, frames in found), [])


def _audience(
    stream: Stream, view: GuildView, rule: gating.Gate, event: Event, now: int
) -> list[Session]:
    """The recipients of an event that changes no rule: those of the last such event of the
    same scope and channel, unless the subscribers or the rules changed since (both clear
    ``stream.audiences``) or a timeout ended. Asking the view costs a pass over every
    subscriber (0.5 ms at 1,000); this, one lookup."""
    audiences = stream.audiences
    until = stream.audiences_until
    if until is not None and now >= until:
        audiences.clear()
    key = (rule.scope, rule.channel_id)
    found = audiences.get(key)
    if found is not None:
        return found
    if len(audiences) >= MAX_AUDIENCES:
        audiences.clear()
    if not audiences:
        stream.audiences_until = view.next_change_ms(now)
    subscribers = list(stream.subscribers)
    users = [s.user_id for s in subscribers]
    found = audiences[key] = Audience(
        _chosen(view, event.type, event.payload, subscribers, users, now)
    )
    return found


def _chosen(
    view: GuildView,
    type_: str,
    payload: Any,
    subscribers: list[Session],
    users: list[int],
    now: int,
) -> list[Session]:
    """Those of ``subscribers`` (whose users are ``users``, in order) the view lets see the
    event."""
    chosen = set(view.deliver(type_, payload, users, now))
    return [s for s in subscribers if s.user_id in chosen]


class Hub:
    def __init__(self, db: Database, bus: Bus) -> None:
        self.db = db
        self.bus = bus
        self.streams: dict[str, Stream] = {}
        #: A user's sessions here (a tuple: most have one or two).
        self.sessions_by_user: dict[int, tuple[Session, ...]] = {}
        #: Frames to send when this loop pass ends, with their recipients, in order.
        self._pending: list[tuple[Sequence[Session], bytes]] = []
        self._flush_scheduled = False
        self._subscription = bus.subscribe(self.on_event)
        self._tasks: set[asyncio.Task[None]] = set()
        #: Frames queued to sessions: for metrics.
        self.deliveries = 0

    # -- following streams ----------------------------------------------------------------
    async def follow(self, names: Iterable[str]) -> list[Stream]:
        """The streams, loaded (starting position, guild view); loads in one snapshot each."""
        wanted = list(dict.fromkeys(names))
        to_load: list[Stream] = []
        for name in wanted:
            if name not in self.streams:
                stream = self.streams[name] = Stream(name)
                to_load.append(stream)
        if to_load:
            try:
                await self._load(to_load)
            except BaseException as exc:
                for stream in to_load:
                    if not stream.loaded.done():
                        stream.loaded.set_exception(exc)
                        stream.loaded.exception()  # retrieved: no "never retrieved" warning
                    if self.streams.get(stream.name) is stream:
                        del self.streams[stream.name]
                raise
        streams = [self.streams[name] for name in wanted if name in self.streams]
        for stream in streams:
            await asyncio.shield(stream.loaded)
        return streams

    async def _load(self, streams: list[Stream]) -> None:
        async with self.db.read(snapshot=True) as conn:
            heads = await log.heads(conn, [s.name for s in streams])
            for stream in streams:
                guild_id = guild_id_of(stream.name)
                if guild_id is not None:
                    rows = await read_guild(conn, guild_id)
                    stream.view = GuildView.of(rows)
                    stream.book = ChannelBook.of(rows)
        for stream in streams:
            stream.delivered = heads[stream.name]
            stream.loaded.set_result(None)
            self._deliver_ready(stream, stream.drain())

    def subscribe(self, session: Session, streams: Iterable[Stream]) -> dict[str, int]:
        """Add ``session`` to loaded streams; returns the position it starts after, per
        stream. Synchronous, so no event can slip between the mark and the subscription."""
        marks: dict[str, int] = {}
        for stream in streams:
            # Forgotten meanwhile (a long load)? Follow it again: a gap since is refilled
            # from the log when the next event shows it.
            self.streams.setdefault(stream.name, stream)
            stream.subscribers.add(session)
            stream.audiences.clear()
            if stream.name not in session.streams:
                session.streams += (stream.name,)
            marks[stream.name] = stream.delivered
        mine = self.sessions_by_user.get(session.user_id, ())
        if session not in mine:
            self.sessions_by_user[session.user_id] = (*mine, session)
        return marks

    def unsubscribe(self, session: Session, names: Iterable[str] | None = None) -> None:
        leaving = set(session.streams if names is None else names)
        session.streams = tuple(n for n in session.streams if n not in leaving)
        for name in leaving:
            stream = self.streams.get(name)
            if stream is None:
                continue
            stream.subscribers.discard(session)
            stream.audiences.clear()
            if not stream.subscribers and stream.ready:
                self._forget(stream)
        if names is None:
            others = tuple(
                s for s in self.sessions_by_user.get(session.user_id, ()) if s is not session
            )
            if others:
                self.sessions_by_user[session.user_id] = others
            else:
                self.sessions_by_user.pop(session.user_id, None)

    def _forget(self, stream: Stream) -> None:
        """Drop a stream nobody here follows, after ``FORGET_AFTER_S``: a client that
        reconnects soon resumes from the window, and a session that loaded the stream
        just before its last follower left still finds it."""
        asyncio.get_running_loop().call_later(FORGET_AFTER_S, self._forget_now, stream)

    def _forget_now(self, stream: Stream) -> None:
        if stream.subscribers or self.streams.get(stream.name) is not stream:
            return
        if stream.filling is not None:
            stream.filling.cancel()
        del self.streams[stream.name]

    # -- events from the bus ----------------------------------------------------------
    def on_event(self, event: Event) -> None:
        stream = self.streams.get(event.stream)
        if stream is None:
            return
        if event.position is None:  # ephemeral: typing, presence
            self._dispatch(stream, event, None)
            return
        self._deliver_ready(stream, stream.take(event))
        if stream.missing() is not None and stream.filling is None:
            stream.filling = self.spawn(self._fill_gap(stream))

    def _deliver_ready(self, stream: Stream, events: list[Event]) -> None:
        for event in events:
            self._dispatch(stream, event, event.position)

    async def _fill_gap(self, stream: Stream) -> None:
        try:
            await asyncio.sleep(GAP_WAIT_MS / 1000)
            while (gap := stream.missing()) is not None:
                await self._read_into(stream, *gap)
        except log.Gap:
            log_.error("stream_gap_unfillable", stream=stream.name)
        except Exception:
            log_.exception("stream_gap_fill_failed", stream=stream.name)
        finally:
            stream.filling = None

    async def _logged(self, name: str, after: int, up_to: int) -> list[log.LoggedEvent]:
        """The log's events ``after < position <= up_to``, in order (:class:`log.Gap` if
        pruned), read in pages."""
        out: list[log.LoggedEvent] = []
        while after < up_to:
            async with self.db.read() as conn:
                found = await log.read_after(conn, name, after, up_to)
            out += found
            after = found[-1].position
        return out

    async def _read_into(self, stream: Stream, after: int, up_to: int) -> None:
        """Deliver the logged events ``after < position <= up_to`` through the stream."""
        for logged in await self._logged(stream.name, after, up_to):
            event = Event(
                type=logged.type,
                stream=logged.stream,
                payload=msgspec.json.decode(logged.payload),
                position=logged.position,
            )
            self._deliver_ready(stream, stream.take(event))

    async def reach(self, streams: list[Stream], positions: dict[str, int]) -> None:
        """Before a RESUME is marked: a client may have seen, through another node, events
        this process has not handed on yet; deliver up to the log's head first, so that the
        replay and the live flow both start past what the client has."""
        behind = [s for s in streams if positions.get(s.name, 0) > s.delivered]
        if not behind:
            return
        async with self.db.read() as conn:
            heads = await log.heads(conn, [s.name for s in behind])
        for stream in behind:
            try:
                await self._read_into(stream, stream.delivered, heads[stream.name])
            except log.Gap:
                log_.error("stream_gap_unfillable", stream=stream.name)

    def resync(self) -> None:
        """The bus may have dropped events (its link was down): catch every stream up to
        the log's head."""
        self.spawn(self._catch_up())

    async def _catch_up(self) -> None:
        streams = [s for s in self.streams.values() if s.ready]
        async with self.db.read() as conn:
            heads = await log.heads(conn, [s.name for s in streams])
        for stream in streams:
            if self.streams.get(stream.name) is not stream:
                continue
            try:
                await self._read_into(stream, stream.delivered, heads[stream.name])
            except log.Gap:
                log_.error("stream_gap_unfillable", stream=stream.name)

    def _dispatch(self, stream: Stream, event: Event, position: int | None) -> None:
        payload, type_ = event.payload, event.type
        frame = dispatch_frame(type_, encode(payload), position, stream.name)
        view = stream.view
        channel: int | None = None
        recipients: Iterable[Session] = stream.subscribers
        before: Before | None = None
        watched = type_ in WATCHED  # messages, reactions, typing: this lookup, nothing more
        if view is not None:
            rule = gating.gate(type_, payload)
            channel = _window_channel(rule)
            now = now_ms()
            if watched or type_ in RULE_EVENTS or rule.user_id is not None:
                stream.audiences.clear()
                subscribers = list(stream.subscribers)
                users = [s.user_id for s in subscribers]
                if watched and changes_sight(view, type_, payload):
                    before = Before.in_view(view, users, now)
                recipients = _chosen(view, type_, payload, subscribers, users, now)
            else:  # messages, reactions, typing...: the same recipients as the last one
                recipients = _audience(stream, view, rule, event, now)
        count = self.push(recipients, frame)
        if watched and view is not None and stream.book is not None:
            stream.book.apply(type_, payload)
            if before is not None:
                # Right after the rule event's frame: who gained or lost sight of a channel.
                for index, frames in stream.book.derived(view, before, users, now, stream.name):
                    for derived in frames:
                        self.push((subscribers[index],), derived)
                    count += len(frames)
        self.deliveries += count
        if position is not None:
            follow = follow_of(payload) if view is None else None
            stream.window.append(Sent(position, frame, channel, follow, before is not None))
            self._after(stream, event, follow)

    def _after(self, stream: Stream, event: Event, follow: tuple[str, int] | None) -> None:
        """Membership effects: who follows which stream from now on."""
        type_ = event.type
        if stream.view is not None:
            if type_ in gating.LEAVES:  # the member leaves the stream, after receiving it
                user = gating.to_id(gating.field(gating.field(event.payload, "user"), "id"))
                for session in self.sessions_by_user.get(user or 0, ()):
                    self.unsubscribe(session, [stream.name])
            elif type_ == "GUILD_DELETE":
                for session in list(stream.subscribers):
                    self.unsubscribe(session, [stream.name])
            return
        kind, _, ident = stream.name.partition(":")
        if kind != "user":
            return
        user_id = int(ident)
        if type_ == "GUILD_DELETE":
            guild = f"guild:{gating.field(event.payload, 'id')}"
            for session in self.sessions_by_user.get(user_id, ()):
                self.unsubscribe(session, [guild])
            return
        if follow is None:
            return
        # GUILD_CREATE, GUILD_JOIN, a DM's CHANNEL_CREATE: the log stamped which stream the
        # user now follows, and from where.
        target, after = follow
        shown = _listed_channels(event.payload)
        for session in self.sessions_by_user.get(user_id, ()):
            if target not in session.streams:
                self.spawn(self._join(session, target, after, shown))

    async def _join(
        self, session: Session, name: str, after: int, shown: frozenset[int] | None = None
    ) -> None:
        """A session follows a stream it gained mid-session (a guild joined, a DM opened),
        from ``after``, the stream's position when that happened (the event's ``follow``):
        what the stream delivered since goes to the session first, then its live flow.
        ``shown``: the channels that event listed, if it listed any (GUILD_JOIN); when a rule
        change came in between, the channels it showed or hid follow the replay."""
        (stream,) = await self.follow([name])
        frames: list[bytes] = []
        rules_changed = False
        # Each pass reads up to what the stream has delivered; a pass that had to wait for
        # the log lets the stream move on, and the next pass (from the window) catches up.
        while after < stream.delivered:
            if not session.open or name in session.streams:
                return
            mark = stream.delivered
            sent = stream.window_after(after)
            if sent is None:
                try:
                    sent = await self._from_log(name, after, mark)
                except log.Gap:
                    log_.error("stream_gap_unfillable", stream=name)
                    break
            frames += self._visible(session, stream, sent, mark)
            rules_changed = rules_changed or _sight_among(sent, mark)
            after = mark
        if session.open and name not in session.streams:
            if rules_changed and shown is not None:
                frames += _sight_since(session, stream, shown)
            for frame in frames:
                self.push((session,), frame)
            self.subscribe(session, [stream])

    # -- replay ------------------------------------------------------------------------
    async def replay(
        self,
        session: Session,
        positions: dict[str, int],
        marks: dict[str, int],
        stale: set[str] | None = None,
    ) -> list[bytes] | None:
        """The frames a resuming session missed, ``positions`` (exclusive) to ``marks``
        (inclusive), filtered as live delivery would; None if any gap was pruned. Streams
        whose replayed part holds an event that may have changed who sees which channel
        are added to ``stale``: the replay cannot say which channels it showed or hid."""
        frames: list[bytes] = []
        positions = dict(positions)
        names = list(positions)
        for name in names:  # grows: streams the replay shows the session started following
            after = positions[name]
            mark = marks.get(name)
            stream = self.streams.get(name)
            if mark is None or stream is None or after >= mark:
                continue
            sent = stream.window_after(after)
            if sent is None:
                try:
                    sent = await self._from_log(name, after, mark)
                except log.Gap:
                    return None
            frames += self._visible(session, stream, sent, mark)
            if stale is not None and _sight_among(sent, mark):
                stale.add(name)
            for item in sent:
                # A guild joined (or DM opened) while the client was away: it has no
                # position there yet; its events since the join follow the join.
                if item.follow is not None and item.position <= mark:
                    followed, start = item.follow
                    if followed in marks and followed not in positions:
                        positions[followed] = start
                        names.append(followed)
        return frames

    @staticmethod
    def _visible(session: Session, stream: Stream, sent: list[Sent], up_to: int) -> list[bytes]:
        """The frames of ``sent`` up to position ``up_to`` that the session may see now."""
        now = now_ms()
        view = stream.view
        frames: list[bytes] = []
        for item in sent:
            if item.position > up_to:
                break
            visible = (
                item.channel is None
                or view is None
                or view.can_view(session.user_id, item.channel, now)
            )
            if visible:
                frames.append(item.frame)
        return frames

    async def _from_log(self, name: str, after: int, up_to: int) -> list[Sent]:
        out: list[Sent] = []
        for logged in await self._logged(name, after, up_to):
            payload = msgspec.json.decode(logged.payload)
            channel = _window_channel(gating.gate(logged.type, payload))
            frame = dispatch_frame(logged.type, logged.payload, logged.position, name)
            sight = logged.type in SIGHT_EVENTS and guild_id_of(name) is not None
            out.append(Sent(logged.position, frame, channel, follow_of(payload), sight))
        return out

    # -- writing -------------------------------------------------------------------------
    def push(self, sessions: Iterable[Session], frame: bytes) -> int:
        """Send ``frame`` to each of ``sessions`` once this loop pass ends; returns how many.

        Frames wait here in order until then. A pass that sent one frame (a message at a
        time) writes it to each connection at once, touching each once; a pass that sent
        several (a burst committed together) queues them per connection and writes each
        connection's in one write."""
        recipients = sessions if isinstance(sessions, list | tuple) else list(sessions)
        self._pending.append((recipients, frame))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return len(recipients)

    def _flush(self) -> None:
        self._flush_scheduled = False
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            recipients, frame = pending[0]
            if type(recipients) is Audience:
                recipients.write(frame)
                return
            for session in recipients:
                session.write_now(frame)
            return
        dirty: list[Session] = []
        for recipients, frame in pending:
            for session in recipients:
                if session.push(frame):
                    dirty.append(session)
        for session in dirty:
            session.write_pushed()

    # -- lifecycle -------------------------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        self._subscription.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
