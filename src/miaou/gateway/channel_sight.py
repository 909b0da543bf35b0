"""Channels a rule change shows or hides: per-recipient CHANNEL_CREATE / CHANNEL_DELETE.

When an event of a guild stream changes who may see which channel (a role's VIEW_CHANNEL or
ADMINISTRATOR, a channel's VIEW_CHANNEL overwrites, a member's roles, the owner), the hub
sends each connected member who gains sight of a channel a ``CHANNEL_CREATE`` for it, and
each who loses one a ``CHANNEL_DELETE``, right after the event's own frame (docs/gateway.md,
"Channels shown and hidden by a rule change"). Channels only: threads are listed per channel
by the clients that show them.

These frames are made for their recipients, not broadcast: ``s`` is null (like typing) and
they never enter the stream's window or log. A RESUME's replay cannot rebuild them (what the
session saw before the replay's first rule change is not kept); RESUMED names the guilds to
re-read instead (``Hub.replay``'s ``stale``).

Cost: :data:`WATCHED` is the only test an ordinary event (a message, a reaction) pays (a
frozenset lookup, about 25 ns, beside a dispatch's 10-40 us; a micro-benchmark of
``Hub._dispatch`` for MESSAGE_CREATE with 1 to 1,000 subscribers showed no difference above
the machine's noise). A
watched event is first read against the view (:func:`changes_sight`, a few dict lookups):
only one that changes a rule on VIEW_CHANNEL takes a :class:`Before` snapshot, which copies
each connected *viewer's* visible set once (GuildView shares one set among the members with
the same roles), and the diff is computed once per (before, after) pair of sets: a change of
@everyone in a guild of 10,000 connected members costs one set difference per distinct role
combination, plus a dict lookup and the queued frames per member.

:class:`ChannelBook` keeps the guild's channels (not threads) as READY lists them, from the
stream load and then from CHANNEL_CREATE / UPDATE / DELETE, bounded by the channel count.
Its ``last_message_id`` is as of the channel's load or last channel event (messages do not
update it: that would cost every message a dict write).

:func:`changes_sight` asks the view for the rules as they are before the event applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Final

import msgspec

from miaou.chat.models import THREAD_TYPES
from miaou.chat.permissions import Overwrite, Permission
from miaou.chat.views import channel_view
from miaou.gateway.frames import dispatch_frame, encode
from miaou.gateway.gating import field, overwrites_of, role_ids_of, to_id
from miaou.gateway.guild_view import GuildRows, GuildView

_SIGHT_BITS: Final = int(Permission.VIEW_CHANNEL | Permission.ADMINISTRATOR)
_VIEW_BIT: Final = int(Permission.VIEW_CHANNEL)
_THREADS: Final = frozenset(int(t) for t in THREAD_TYPES)

#: Events that may change who sees a channel (the others cannot: a new role has no holders,
#: a timeout keeps VIEW_CHANNEL, a channel's own CREATE / DELETE says so itself).
SIGHT_EVENTS: Final = frozenset(
    {"GUILD_UPDATE", "GUILD_ROLE_UPDATE", "GUILD_ROLE_DELETE", "CHANNEL_UPDATE",
     "GUILD_MEMBER_UPDATE"}
)  # fmt: skip
#: Events that change the channels the book keeps.
BOOK_EVENTS: Final = frozenset(
    {"CHANNEL_CREATE", "CHANNEL_UPDATE", "CHANNEL_DELETE", "GUILD_DELETE"}
)
#: What the hub hands to this module; every other event costs one set lookup.
WATCHED: Final = SIGHT_EVENTS | BOOK_EVENTS


def _view_rules(overwrites: Sequence[Overwrite]) -> frozenset[tuple[int, int, int, int]]:
    """The part of a channel's overwrites that decides VIEW_CHANNEL."""
    return frozenset(
        (o.type, o.id, o.allow & _VIEW_BIT, o.deny & _VIEW_BIT)
        for o in overwrites
        if (o.allow | o.deny) & _VIEW_BIT
    )


def changes_sight(view: GuildView, event_type: str, payload: Any) -> bool:
    """Whether ``event_type`` with ``payload``, not yet applied to ``view``, may change who
    sees which channel. VIEW_CHANNEL depends only on the base VIEW_CHANNEL and ADMINISTRATOR
    bits, the VIEW_CHANNEL bits of overwrites, a member's roles and who owns the guild
    (``miaou.chat.permissions._overwritten``); a change of anything else is not one."""
    if event_type == "GUILD_MEMBER_UPDATE":
        held = view.member_role_ids(to_id(field(field(payload, "user"), "id")) or 0)
        roles = role_ids_of(field(payload, "roles") or (), view.guild_id)
        return held is not None and roles != held
    if event_type == "GUILD_ROLE_UPDATE":
        role = field(payload, "role")
        role_id = to_id(field(role, "id"))
        if role_id is None:
            return False
        old = view.role_permissions(role_id)
        bits = int(field(role, "permissions") or 0)
        return old is None or bool((old ^ bits) & _SIGHT_BITS)
    if event_type == "GUILD_ROLE_DELETE":
        # Its holders lose it; channels may name it.
        return view.role_permissions(to_id(field(payload, "role_id")) or 0) is not None
    if event_type == "CHANNEL_UPDATE":
        raw = field(payload, "permission_overwrites")
        if raw is None or field(payload, "type") in _THREADS:
            return False  # a reorder's: the overwrites did not change
        known = view.channel_overwrites(to_id(field(payload, "id")) or 0)
        return known is None or _view_rules(known) != _view_rules(overwrites_of(raw))
    if event_type == "GUILD_UPDATE":
        owner_id = to_id(field(payload, "owner_id"))
        return owner_id is not None and owner_id != view.owner_id
    return False


class Before:
    """What each of a list of users saw before a rule event (None: not a member)."""

    __slots__ = ("seen",)

    def __init__(self, seen: Sequence[frozenset[int] | None]) -> None:
        """``seen`` as told to them: a joiner's, the channels its GUILD_JOIN listed."""
        self.seen = list(seen)

    @classmethod
    def in_view(cls, view: GuildView, users: Sequence[int], now_ms: int) -> Before:
        """What ``users`` see in ``view`` now: one frozen copy per viewer's set."""
        copies: dict[int, frozenset[int]] = {}
        seen: list[frozenset[int] | None] = []
        for live in view.sights(users, now_ms):
            if live is None:
                seen.append(None)
                continue
            frozen = copies.get(id(live))
            if frozen is None:
                frozen = copies[id(live)] = frozenset(live)
            seen.append(frozen)
        return cls(seen)


def sight_diff(
    before: frozenset[int], after: set[int] | frozenset[int], channels: dict[int, Any]
) -> tuple[list[int], list[int]]:
    """(shown, hidden): the ids of ``channels`` (not threads) in ``after`` only, and in
    ``before`` only. Ids ``channels`` does not hold (threads) are left out."""
    if before == after:
        return [], []
    shown = [c for c in after - before if c in channels]
    hidden = [c for c in before - after if c in channels]
    return shown, hidden


class ChannelBook:
    """The guild's channels (not threads) as READY lists them, by id (wire dicts)."""

    __slots__ = ("channels",)

    def __init__(self, channels: dict[int, dict[str, Any]] | None = None) -> None:
        self.channels: dict[int, dict[str, Any]] = channels or {}

    @classmethod
    def of(cls, rows: GuildRows) -> ChannelBook:
        """The book of what ``read_guild`` read for the guild's view (the same snapshot)."""
        return cls({
            row.id: msgspec.to_builtins(channel_view(row, rows.overwrites.get(row.id, ())))
            for row in rows.channels
            if row.type not in _THREADS
        })  # fmt: skip

    def apply(self, event_type: str, payload: Any) -> None:
        if event_type == "GUILD_DELETE":
            self.channels.clear()
            return
        data: dict[str, Any] = (
            payload if isinstance(payload, dict) else msgspec.to_builtins(payload)
        )
        channel_id = to_id(data.get("id"))
        if channel_id is None:
            return
        if event_type == "CHANNEL_DELETE":
            self.channels.pop(channel_id, None)
            return
        if data.get("type") in _THREADS:
            return
        if data.get("permission_overwrites") is None:  # a reorder's: they did not change
            old = self.channels.get(channel_id) or {}
            data = {**data, "permission_overwrites": old.get("permission_overwrites") or []}
        self.channels[channel_id] = data

    def derived(
        self,
        view: GuildView,
        before: Before,
        users: Sequence[int],
        now_ms: int,
        stream: str,
    ) -> Iterator[tuple[int, list[bytes]]]:
        """After the event applied (to ``view`` and this book): (index in ``users``, the
        CHANNEL_CREATE / CHANNEL_DELETE frames for them), for each user whose sight changed.
        Each frame is encoded once, whoever receives it."""
        frames: dict[tuple[str, int], bytes] = {}
        by_pair: dict[tuple[int, int], list[bytes]] = {}
        channels = self.channels

        def frame(kind: str, channel_id: int) -> bytes:
            found = frames.get((kind, channel_id))
            if found is None:
                payload = encode(channels[channel_id])
                found = frames[kind, channel_id] = dispatch_frame(kind, payload, None, stream)
            return found

        def order(channel_id: int) -> tuple[int, int]:
            return (int(channels[channel_id].get("position") or 0), channel_id)

        for index, (old, new) in enumerate(
            zip(before.seen, view.sights(users, now_ms), strict=True)
        ):
            if old is None or new is None:
                continue  # not a member before (GUILD_JOIN told them) or after (removed)
            key = (id(old), id(new))
            out = by_pair.get(key)
            if out is None:
                shown, hidden = sight_diff(old, new, channels)
                out = by_pair[key] = [
                    *(frame("CHANNEL_DELETE", c) for c in sorted(hidden, key=order)),
                    *(frame("CHANNEL_CREATE", c) for c in sorted(shown, key=order)),
                ]
            if out:
                yield index, out
