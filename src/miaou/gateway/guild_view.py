"""Who in one guild may see which channel, in memory, kept current from the guild's stream.

A gateway process delivers each event of ``guild:<id>`` to the connected members who may see
it, in stream order, without a database query per event. So it loads a :class:`GuildView`
once (:meth:`GuildView.load`, in the read transaction where it also reads the stream's
position) and then updates it from the events themselves (:meth:`GuildView.apply`): event N
changes the rules, event N+1 is filtered by the new ones.

Answers come from the pure rules the REST services use (``miaou.chat.permissions``), with
``access.channel_access``'s extra rules: a thread has its parent's permissions, and a private
thread is seen only by its members and by those with MANAGE_THREADS there. A timed-out
member keeps VIEW_CHANNEL but loses MANAGE_THREADS, hence the ``now_ms`` argument.

Speed: members who hold the same roles, are not the owner, are not timed out and are not
named by a member overwrite share one *viewer*; a viewer caches the set of channels it sees
(and the private threads it would see as a thread member). ``can_view`` is then two dict
lookups and a set lookup. A role change drops the caches of the viewers holding it (all of
them for @everyone); a channel change recomputes that channel, and its threads, in every
cached set; a member change moves that member to another viewer.

What the events leave implicit, the view infers as the database does: a deleted role leaves
its holders (no GUILD_MEMBER_UPDATE follows), a deleted channel takes its threads, a private
thread's creator is its first member (THREAD_CREATE's ``owner_id``), and a CHANNEL_UPDATE
whose ``permission_overwrites`` is null (a reorder's) leaves the overwrites as they were.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, KeysView, Sequence
from typing import Any, Final, NamedTuple

import msgspec
from sqlalchemy import select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat.models import THREAD_TYPES, ChannelType
from miaou.chat.permissions import (
    OVERWRITE_MEMBER,
    OVERWRITE_ROLE,
    MemberInfo,
    Overwrite,
    Permission,
    RoleInfo,
    base_permissions,
    channel_permissions,
    thread_permissions,
)
from miaou.chat.tables import (
    channels,
    guilds,
    member_roles,
    members,
    overwrites,
    roles,
    thread_members,
)
from miaou.gateway.gating import (
    Gate,
    Scope,
    Timing,
    gate,
    overwrites_of,
    role_ids_of,
    sort_overwrites,
    to_id,
)

_VIEW: Final = Permission.VIEW_CHANNEL
_MANAGE_THREADS: Final = Permission.MANAGE_THREADS
_THREADS: Final = frozenset(int(t) for t in THREAD_TYPES)
_PRIVATE_THREAD: Final = int(ChannelType.PRIVATE_THREAD)
_SHARED: Final = -1  # the user id of a shared viewer: no member overwrite names it
_HIDDEN, _VISIBLE, _IF_THREAD_MEMBER = 0, 1, 2


class ChannelInfo(msgspec.Struct, frozen=True):
    """A channel or thread as the view takes it (from :meth:`GuildView.load`, or tests)."""

    id: int
    type: int
    parent_id: int | None = None
    overwrites: tuple[Overwrite, ...] = ()
    thread_members: frozenset[int] = frozenset()  # kept for private threads only


class MemberRecord(msgspec.Struct, frozen=True):
    user_id: int
    role_ids: tuple[int, ...] = ()
    communication_disabled_until: int | None = None


class _Channel:
    __slots__ = ("is_thread", "members", "overwrites", "parent_id", "private", "type")

    def __init__(
        self, type_: int, parent_id: int | None, ows: tuple[Overwrite, ...], joined: Iterable[int]
    ) -> None:
        self.type = type_
        self.is_thread = type_ in _THREADS
        self.private = type_ == _PRIVATE_THREAD
        self.parent_id = parent_id if self.is_thread else None  # only a thread's matters
        self.overwrites = () if self.is_thread else ows  # a thread uses its parent's
        self.members: set[int] = set(joined) if self.private else set()

    def same_rules(self, other: _Channel) -> bool:
        return (self.type, self.parent_id, self.overwrites) == (
            other.type, other.parent_id, other.overwrites,
        )  # fmt: skip


class _Entry:
    """What one viewer sees, timed out or not. Sets are mutated in place on channel events."""

    __slots__ = ("base", "if_member", "info", "timed_out", "visible")

    def __init__(self, info: MemberInfo, base: Permission, timed_out: bool) -> None:
        self.info = info
        self.base = base
        self.timed_out = timed_out
        self.visible: set[int] = set()
        self.if_member: set[int] = set()  # private threads seen only by their members


class _Viewer:
    __slots__ = ("holders", "muted", "plain", "role_ids", "until", "user_id")

    def __init__(self, role_ids: tuple[int, ...], user_id: int, until: int) -> None:
        self.role_ids = role_ids
        self.user_id = user_id  # _SHARED, or the one member of a special viewer
        self.until = until  # timeout end (ms); 0 for none
        self.holders = 0
        self.plain: _Entry | None = None
        self.muted: _Entry | None = None


def _named(ows: Iterable[Overwrite]) -> set[int]:
    return {o.id for o in ows if o.type == OVERWRITE_MEMBER}


class GuildView:
    """One guild's members, roles, channels and threads, as visibility needs them.

    The hub calls :meth:`deliver` for each event of the guild's stream, in order (or
    :meth:`apply`, then :meth:`can_view` per recipient); ``deleted`` is set by GUILD_DELETE.
    """

    def __init__(
        self,
        guild_id: int,
        owner_id: int,
        roles: Iterable[RoleInfo],
        members: Iterable[MemberRecord],
        channels: Iterable[ChannelInfo],
    ) -> None:
        """A view from plain data (what :meth:`load` reads); ``roles`` includes @everyone."""
        self.guild_id = guild_id
        self.owner_id = owner_id
        self.deleted = False
        self._roles: dict[int, RoleInfo] = {r.id: r for r in roles}
        self._channels: dict[int, _Channel] = {}
        # Threads by parent, the public ones and the private ones.
        self._threads: tuple[dict[int, set[int]], dict[int, set[int]]] = ({}, {})
        self._named: dict[int, int] = {}  # user id -> member overwrites naming them
        self._members: dict[int, _Viewer] = {}
        self._shared: dict[tuple[int, ...], _Viewer] = {}
        self._special: dict[int, _Viewer] = {}
        for c in channels:
            ows = sort_overwrites(c.overwrites)
            self._set_channel(c.id, _Channel(c.type, c.parent_id, ows, c.thread_members))
        for m in members:
            key = role_ids_of(m.role_ids, guild_id)
            self._assign(m.user_id, key, m.communication_disabled_until or 0)

    @classmethod
    async def load(cls, conn: AsyncConnection, guild_id: int) -> GuildView:
        """Read the guild in ``conn``'s snapshot (:func:`read_guild`)."""
        return cls.of(await read_guild(conn, guild_id))

    @classmethod
    def of(cls, rows: GuildRows) -> GuildView:
        """The view of what :func:`read_guild` read. A guild that does not exist gives an
        empty view with ``deleted`` set."""
        if rows.owner_id is None:
            view = cls(rows.guild_id, 0, (), (), ())
            view.deleted = True
            return view
        ows = {
            channel_id: [
                Overwrite(id=o.target_id, type=o.target_type, allow=o.allow, deny=o.deny)
                for o in found
                if o.target_type in (OVERWRITE_ROLE, OVERWRITE_MEMBER)
            ]
            for channel_id, found in rows.overwrites.items()
        }
        infos = [ChannelInfo(c.id, c.type, c.parent_id, tuple(ows.get(c.id, ())),
                             rows.thread_members.get(c.id, frozenset()))
                 for c in rows.channels]  # fmt: skip
        return cls(rows.guild_id, rows.owner_id, rows.roles, rows.members, infos)

    # -- questions ----------------------------------------------------------------------
    @property
    def member_count(self) -> int:
        return len(self._members)

    def member_ids(self) -> KeysView[int]:
        """Live: copy it before applying events while iterating."""
        return self._members.keys()

    def is_member(self, user_id: int) -> bool:
        return user_id in self._members

    def member_role_ids(self, user_id: int) -> tuple[int, ...] | None:
        """The roles a member holds (not @everyone); None for a non-member."""
        viewer = self._members.get(user_id)
        return None if viewer is None else viewer.role_ids

    def role_permissions(self, role_id: int) -> int | None:
        """A role's permission bits; None for a role the view does not know."""
        role = self._roles.get(role_id)
        return None if role is None else int(role.permissions)

    def channel_overwrites(self, channel_id: int) -> tuple[Overwrite, ...] | None:
        """A channel's overwrites (a thread's are its parent's: empty here); None for a
        channel the view does not know."""
        channel = self._channels.get(channel_id)
        return None if channel is None else channel.overwrites

    def can_view(self, user_id: int, channel_id: int, now_ms: int) -> bool:
        """VIEW_CHANNEL in a channel or thread; False for a non-member or unknown channel."""
        viewer = self._members.get(user_id)
        if viewer is None:
            return False
        if viewer.until > now_ms:
            entry = viewer.muted or self._fill(viewer, True)
        else:
            entry = viewer.plain or self._fill(viewer, False)
        if channel_id in entry.visible:
            return True
        return channel_id in entry.if_member and user_id in self._channels[channel_id].members

    def visible_channels(self, user_id: int, now_ms: int) -> list[int]:
        """Ids of every channel and thread the member sees, ascending."""
        viewer = self._members.get(user_id)
        if viewer is None:
            return []
        entry = self._entry(viewer, now_ms)
        found = set(entry.visible)
        found.update(c for c in entry.if_member if user_id in self._channels[c].members)
        return sorted(found)

    def sights(self, users: Iterable[int], now_ms: int) -> list[set[int] | None]:
        """Per user, the cached set of channels and threads their viewer sees (None for a
        non-member): one set object per viewer, changed in place by later events (copy it
        to keep it). Private threads seen only as a thread member are not in it."""
        members, entry = self._members, self._entry
        return [None if v is None else entry(v, now_ms).visible for v in map(members.get, users)]

    def deliver(
        self, event_type: str, payload: Any, users: Iterable[int], now_ms: int
    ) -> list[int]:
        """Apply one event of the guild's stream; return those of ``users`` (in their order)
        who receive it: its :func:`~miaou.gateway.gating.gate` read against the rules before
        and/or after it, plus the member it removes (GUILD_MEMBER_REMOVE, GUILD_BAN_ADD)."""
        g = gate(event_type, payload)
        candidates = users if isinstance(users, Sequence) else list(users)
        before = None if g.timing is Timing.AFTER else self._admit(g, candidates, now_ms)
        self.apply(event_type, payload)
        if before is not None and g.timing is Timing.BEFORE and g.user_id is None:
            return before
        chosen = set(before or ())
        if g.timing is not Timing.BEFORE:
            chosen.update(self._admit(g, candidates, now_ms))
        return [u for u in candidates if u in chosen or u == g.user_id]

    def _admit(self, g: Gate, users: Sequence[int], now_ms: int) -> list[int]:
        if g.scope is Scope.MEMBERS:
            known = self._members
            return [u for u in users if u in known]
        channel = self._channels.get(g.channel_id or 0)
        if g.scope is not Scope.CHANNEL or channel is None:
            return []
        # can_view asked once per viewer rather than once per user, then a C-speed filter.
        channel_id, joined = g.channel_id, channel.members
        viewers = list(map(self._members.get, users))
        sure, unless = set(), set()  # admitted; admitted if a member of the private thread
        for viewer in set(viewers):
            if viewer is not None:
                entry = self._entry(viewer, now_ms)
                if channel_id in entry.visible:
                    sure.add(viewer)
                elif channel_id in entry.if_member:
                    unless.add(viewer)
        if not unless:
            return list(itertools.compress(users, map(sure.__contains__, viewers)))
        return [u for u, v in zip(users, viewers, strict=True)
                if v in sure or (v in unless and u in joined)]  # fmt: skip

    # -- events -------------------------------------------------------------------------
    def apply(self, event_type: str, payload: Any) -> None:
        """Update the rules from one event of the guild's stream; others are ignored."""
        handler = _HANDLERS.get(event_type)
        if handler is not None:
            data = payload if isinstance(payload, dict) else msgspec.to_builtins(payload)
            handler(self, data)

    def _guild_update(self, data: dict[str, Any]) -> None:
        owner_id = to_id(data.get("owner_id"))
        if owner_id is not None and owner_id != self.owner_id:
            old, self.owner_id = self.owner_id, owner_id
            self._reassign(old)
            self._reassign(owner_id)

    def _guild_delete(self, data: dict[str, Any]) -> None:
        self.deleted = True
        for store in (self._members, self._shared, self._special, self._channels, self._named,
                      *self._threads):  # fmt: skip
            store.clear()

    def _role_put(self, data: dict[str, Any]) -> None:
        raw = data.get("role") or {}
        role_id = to_id(raw.get("id"))
        if role_id is None:
            return
        role = RoleInfo(id=role_id, position=int(raw.get("position") or 0),
                        permissions=int(raw.get("permissions") or 0))  # fmt: skip
        old = self._roles.get(role_id)
        self._roles[role_id] = role
        if old is None or old.permissions != role.permissions:
            self._forget_role(role_id)

    def _role_delete(self, data: dict[str, Any]) -> None:
        role_id = to_id(data.get("role_id"))
        if role_id is not None and self._roles.pop(role_id, None) is not None:
            # Its holders lose it with no GUILD_MEMBER_UPDATE: _fill skips unknown role ids.
            self._forget_role(role_id)

    def _forget_role(self, role_id: int) -> None:
        for viewer in self._viewers():
            if role_id == self.guild_id or role_id in viewer.role_ids:
                viewer.plain = viewer.muted = None

    def _channel_put(self, data: dict[str, Any]) -> None:
        channel_id, kind = to_id(data.get("id")), data.get("type")
        if channel_id is None or not isinstance(kind, int):
            return
        old = self._channels.get(channel_id)
        raw = data.get("permission_overwrites")
        # None: the event does not say (a reorder's CHANNEL_UPDATE); they did not change.
        ows = overwrites_of(raw) if raw is not None else (old.overwrites if old else ())
        joined: Iterable[int] = old.members if old else ()
        creator = to_id(data.get("owner_id"))
        if old is None and kind == _PRIVATE_THREAD and creator is not None:
            joined = (creator,)  # the creator joins in the creating transaction
        new = _Channel(kind, to_id(data.get("parent_id")), ows, joined)
        self._set_channel(channel_id, new)
        if old is None or not old.same_rules(new):
            self._refresh([channel_id, *self._threads_of(channel_id)])

    def _channel_delete(self, data: dict[str, Any]) -> None:
        channel_id = to_id(data.get("id"))
        if channel_id is None or channel_id not in self._channels:
            return
        gone = [channel_id, *self._threads_of(channel_id)]  # deleted with it
        for cid in gone:
            self._set_channel(cid, None)
        self._refresh(gone)

    def _thread_members(self, data: dict[str, Any]) -> None:
        thread = self._channels.get(to_id(data.get("id")) or 0)
        if thread is not None and thread.private:
            thread.members.update(u for u in map(to_id, data.get("added_member_ids") or ())
                                  if u is not None)  # fmt: skip
            thread.members.difference_update(map(to_id, data.get("removed_member_ids") or ()))

    def _member_put(self, data: dict[str, Any], joins: bool) -> None:
        user_id = to_id((data.get("user") or {}).get("id"))
        if user_id is not None and (joins or user_id in self._members):
            key = role_ids_of(data.get("roles") or (), self.guild_id)
            self._assign(user_id, key, data.get("communication_disabled_until") or 0)

    def _member_remove(self, data: dict[str, Any]) -> None:
        user_id = to_id((data.get("user") or {}).get("id"))
        if user_id is not None:
            self._release(user_id)

    # -- bookkeeping --------------------------------------------------------------------
    def _set_channel(self, channel_id: int, new: _Channel | None) -> None:
        """Store (or drop) a channel, keeping count of the members its overwrites name."""
        old = self._channels.pop(channel_id, None)
        if old is not None and old.is_thread:
            self._threads[old.private][old.parent_id or 0].discard(channel_id)
        if new is not None:
            self._channels[channel_id] = new
            if new.is_thread:
                self._threads[new.private].setdefault(new.parent_id or 0, set()).add(channel_id)
        before = _named(old.overwrites) if old else set()
        after = _named(new.overwrites) if new else set()
        for user_id in before ^ after:
            was_named = user_id in self._named
            count = self._named.get(user_id, 0) + (1 if user_id in after else -1)
            if count > 0:
                self._named[user_id] = count
            else:
                self._named.pop(user_id, None)
            if was_named != (count > 0):
                self._reassign(user_id)  # now needs, or no longer needs, a viewer of its own

    def _threads_of(self, channel_id: int) -> list[int]:
        public, private = (index.get(channel_id, ()) for index in self._threads)
        return [*public, *private]

    def next_change_ms(self, now_ms: int) -> int | None:
        """When the first timeout running at ``now_ms`` ends: what members see changes then
        without an event. None if no member is timed out."""
        return min((v.until for v in self._special.values() if v.until > now_ms), default=None)

    def _viewers(self) -> Iterator[_Viewer]:
        return itertools.chain(self._shared.values(), self._special.values())

    def _assign(self, user_id: int, role_ids: tuple[int, ...], until: int) -> None:
        """Make ``user_id`` a member with these roles, on a shared viewer if it can be."""
        self._release(user_id)
        if user_id == self.owner_id or user_id in self._named or until:
            viewer = self._special[user_id] = _Viewer(role_ids, user_id, until)
        else:
            shared = self._shared.get(role_ids)
            if shared is None:
                shared = self._shared[role_ids] = _Viewer(role_ids, _SHARED, 0)
            viewer = shared
        viewer.holders += 1
        self._members[user_id] = viewer

    def _release(self, user_id: int) -> None:
        viewer = self._members.pop(user_id, None)
        if viewer is None:
            return
        if viewer.user_id != _SHARED:
            del self._special[user_id]
        else:
            viewer.holders -= 1
            if not viewer.holders:
                del self._shared[viewer.role_ids]

    def _reassign(self, user_id: int) -> None:
        viewer = self._members.get(user_id)
        if viewer is not None:
            self._assign(user_id, viewer.role_ids, viewer.until)

    def _entry(self, viewer: _Viewer, now_ms: int) -> _Entry:
        if viewer.until > now_ms:
            return viewer.muted or self._fill(viewer, True)
        return viewer.plain or self._fill(viewer, False)

    def _fill(self, viewer: _Viewer, timed_out: bool) -> _Entry:
        """Compute (and cache) everything a viewer sees."""
        held = frozenset(r for r in viewer.role_ids if r in self._roles)
        info = MemberInfo(viewer.user_id, held, is_owner=viewer.user_id == self.owner_id)
        everyone = self._roles.get(self.guild_id) or RoleInfo(self.guild_id, 0, 0)
        entry = _Entry(info, base_permissions(info, everyone, self._roles), timed_out)
        memo: dict[int, Permission] = {}
        public, private = self._threads
        for channel_id, channel in self._channels.items():
            if channel.is_thread:
                continue  # placed with their parent, below
            perms = self._permissions(entry, channel, memo)
            if _VIEW not in perms:
                continue
            entry.visible.add(channel_id)
            # A thread has its parent's VIEW_CHANNEL and MANAGE_THREADS (thread_permissions).
            entry.visible.update(public.get(channel_id, ()))
            seen_by = entry.visible if _MANAGE_THREADS in perms else entry.if_member
            seen_by.update(private.get(channel_id, ()))
        if timed_out:
            viewer.muted = entry
        else:
            viewer.plain = entry
        return entry

    def _refresh(self, channel_ids: list[int]) -> None:
        """Recompute these channels (changed, new or gone) in every cached entry."""
        for viewer in self._viewers():
            for entry in (viewer.plain, viewer.muted):
                if entry is not None:
                    memo: dict[int, Permission] = {}
                    for channel_id in channel_ids:
                        entry.visible.discard(channel_id)
                        entry.if_member.discard(channel_id)
                        kind = self._classify(entry, channel_id, memo)
                        if kind == _VISIBLE:
                            entry.visible.add(channel_id)
                        elif kind == _IF_THREAD_MEMBER:
                            entry.if_member.add(channel_id)

    def _classify(self, entry: _Entry, channel_id: int, memo: dict[int, Permission]) -> int:
        channel = self._channels.get(channel_id)
        if channel is None:
            return _HIDDEN
        if not channel.is_thread:
            return _VISIBLE if _VIEW in self._permissions(entry, channel, memo) else _HIDDEN
        parent = self._channels.get(channel.parent_id or 0)
        if parent is None or parent.is_thread:
            return _HIDDEN  # fail closed; the database deletes threads with their parent
        # VIEW_CHANNEL and MANAGE_THREADS come through thread_permissions unchanged.
        perms = thread_permissions(self._permissions(entry, parent, memo))
        if _VIEW not in perms:
            return _HIDDEN
        if channel.private and _MANAGE_THREADS not in perms:
            return _IF_THREAD_MEMBER
        return _VISIBLE

    def _permissions(
        self, entry: _Entry, channel: _Channel, memo: dict[int, Permission]
    ) -> Permission:
        # Channels with the very same overwrites tuple (all those with none) share one answer.
        key = id(channel.overwrites)
        found = memo.get(key)
        if found is None:
            found = memo[key] = channel_permissions(
                entry.base, entry.info, self.guild_id, channel.overwrites,
                timed_out=entry.timed_out,
            )  # fmt: skip
        return found


_HANDLERS: Final[dict[str, Callable[[GuildView, dict[str, Any]], None]]] = {
    "GUILD_UPDATE": GuildView._guild_update,
    "GUILD_DELETE": GuildView._guild_delete,
    "GUILD_ROLE_CREATE": GuildView._role_put,
    "GUILD_ROLE_UPDATE": GuildView._role_put,
    "GUILD_ROLE_DELETE": GuildView._role_delete,
    "CHANNEL_CREATE": GuildView._channel_put,
    "CHANNEL_UPDATE": GuildView._channel_put,
    "CHANNEL_DELETE": GuildView._channel_delete,
    "THREAD_CREATE": GuildView._channel_put,
    "THREAD_UPDATE": GuildView._channel_put,
    "THREAD_DELETE": GuildView._channel_delete,
    "THREAD_MEMBERS_UPDATE": GuildView._thread_members,
    "GUILD_MEMBER_ADD": lambda view, data: view._member_put(data, joins=True),
    "GUILD_MEMBER_UPDATE": lambda view, data: view._member_put(data, joins=False),
    "GUILD_MEMBER_REMOVE": GuildView._member_remove,
    "GUILD_BAN_ADD": GuildView._member_remove,
}
#: The events that change the rules (the others leave :meth:`GuildView.deliver`'s answer as
#: it was, until a member's timeout ends: :meth:`GuildView.next_change_ms`).
RULE_EVENTS: Final = frozenset(_HANDLERS)


class GuildRows(NamedTuple):
    """A guild as :func:`read_guild` reads it in one snapshot: what a :class:`GuildView`
    needs, with the channels' full rows (the hub's ``ChannelBook`` is made from them too)."""

    guild_id: int
    owner_id: int | None  # None: no such guild (nothing else is read)
    roles: list[RoleInfo]
    members: list[MemberRecord]
    channels: list[Row[Any]]  # channels and threads, every column
    overwrites: dict[int, list[Row[Any]]]  # by channel id, by target id within
    thread_members: dict[int, frozenset[int]]  # private threads' members


async def read_guild(conn: AsyncConnection, guild_id: int) -> GuildRows:
    """Seven queries whatever the guild's size."""
    owner_query = select(guilds.c.owner_id).where(guilds.c.id == guild_id)
    owner_id = (await conn.execute(owner_query)).scalar()
    if owner_id is None:
        return GuildRows(guild_id, None, [], [], [], {}, {})

    def rows(*columns: Any, where: Any, join: Any = None, order: Any = None) -> Any:
        query = select(*columns)
        if join is not None:
            query = query.join(channels, channels.c.id == join)
        if order is not None:
            query = query.order_by(order)
        return conn.execute(query.where(where))

    role_infos = [RoleInfo(id=r.id, position=r.position, permissions=r.permissions)
                  for r in await rows(roles, where=roles.c.guild_id == guild_id)]  # fmt: skip
    held: dict[int, list[int]] = {}
    for user_id, role_id in await rows(member_roles.c.user_id, member_roles.c.role_id,
                                       where=member_roles.c.guild_id == guild_id):  # fmt: skip
        held.setdefault(user_id, []).append(role_id)
    records = [MemberRecord(m.user_id, tuple(held.get(m.user_id, ())),
                            m.communication_disabled_until)
               for m in await rows(members.c.user_id, members.c.communication_disabled_until,
                                   where=members.c.guild_id == guild_id)]  # fmt: skip
    in_guild = channels.c.guild_id == guild_id
    by_channel: dict[int, list[Row[Any]]] = {}
    for o in await rows(overwrites, where=in_guild, join=overwrites.c.channel_id,
                        order=overwrites.c.target_id):  # fmt: skip
        by_channel.setdefault(o.channel_id, []).append(o)
    joined: dict[int, set[int]] = {}
    for channel_id, user_id in await rows(
        thread_members.c.channel_id, thread_members.c.user_id,
        where=in_guild & (channels.c.type == _PRIVATE_THREAD),
        join=thread_members.c.channel_id,
    ):  # fmt: skip
        joined.setdefault(channel_id, set()).add(user_id)
    found = list(await rows(channels, where=in_guild))
    return GuildRows(
        guild_id, owner_id, role_infos, records, found, by_channel,
        {c: frozenset(users) for c, users in joined.items()},
    )  # fmt: skip
