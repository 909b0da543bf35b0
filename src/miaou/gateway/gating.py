"""Reading guild-stream events, purely: who may receive them, and the rules they carry.

:func:`gate` is the "gated by" column of docs/gateway.md: from the event type and at most
one id of the payload, a :class:`Gate`. :class:`miaou.gateway.guild_view.GuildView` then
names the members it admits (``GuildView.deliver`` gates, applies and filters in order).

A gate also says *when* to look at the rules, since the event may change them
(:class:`Timing`): an event is shown to those who may see it before it applies (a deleted
channel, a kicked member), after (a new channel, a new member) or either (a changed channel:
those who lose sight of it learn so from this very event, and nothing after it).

Payloads arrive as builtins (ids as decimal strings, from the services or replayed from the
stream log) or as msgspec Structs (local message events); :func:`field` reads both.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from miaou.chat.permissions import OVERWRITE_MEMBER, OVERWRITE_ROLE, Overwrite
from miaou.ids import parse_id


class Scope(enum.Enum):
    MEMBERS = "members"  # every member of the guild
    CHANNEL = "channel"  # members with VIEW_CHANNEL on Gate.channel_id
    NOBODY = "nobody"  # an event the table does not know, or a payload without its channel


class Timing(enum.Enum):
    BEFORE = "before"  # the rules as they were before the event applies
    AFTER = "after"  # the rules the event makes
    EITHER = "either"  # admitted by one or the other


@dataclass(frozen=True, slots=True)
class Gate:
    scope: Scope
    channel_id: int | None = None
    timing: Timing = Timing.BEFORE
    # A user who receives the event even if the rules no longer admit them (the kicked or
    # banned member it names), provided they are among the hub's candidates.
    user_id: int | None = None


NOBODY: Final = Gate(Scope.NOBODY)

# Every member; the timing matters only where the event changes membership.
_MEMBERS: Final[dict[str, Timing]] = {
    "GUILD_UPDATE": Timing.BEFORE,
    "GUILD_DELETE": Timing.BEFORE,
    "GUILD_ROLE_CREATE": Timing.BEFORE,
    "GUILD_ROLE_UPDATE": Timing.BEFORE,
    "GUILD_ROLE_DELETE": Timing.BEFORE,
    "GUILD_EMOJIS_UPDATE": Timing.BEFORE,
    "GUILD_MEMBER_ADD": Timing.AFTER,  # the newcomer too
    "GUILD_MEMBER_UPDATE": Timing.BEFORE,
    "GUILD_MEMBER_REMOVE": Timing.BEFORE,  # the one who leaves too
    "GUILD_BAN_ADD": Timing.BEFORE,
    "GUILD_BAN_REMOVE": Timing.BEFORE,
    "PRESENCE_UPDATE": Timing.BEFORE,
}
# These name their user in ``user.id``; that user receives them even once gone.
LEAVES: Final = frozenset({"GUILD_MEMBER_REMOVE", "GUILD_BAN_ADD"})

# VIEW_CHANNEL on the payload's own ``id`` (the channel or thread itself).
_OWN_ID: Final[dict[str, Timing]] = {
    "CHANNEL_CREATE": Timing.AFTER,
    "CHANNEL_UPDATE": Timing.EITHER,
    "CHANNEL_DELETE": Timing.BEFORE,
    "THREAD_CREATE": Timing.AFTER,
    "THREAD_UPDATE": Timing.EITHER,
    "THREAD_DELETE": Timing.BEFORE,
    "THREAD_MEMBERS_UPDATE": Timing.EITHER,  # one added to a private thread, one removed
}

# VIEW_CHANNEL on ``channel_id``; these change no rule, so the timing is moot.
_CHANNEL_ID: Final = frozenset(
    {
        "MESSAGE_CREATE",
        "MESSAGE_UPDATE",
        "MESSAGE_DELETE",
        "MESSAGE_DELETE_BULK",
        "MESSAGE_REACTION_ADD",
        "MESSAGE_REACTION_REMOVE",
        "MESSAGE_REACTION_REMOVE_ALL",
        "MESSAGE_REACTION_REMOVE_EMOJI",
        "CHANNEL_PINS_UPDATE",
        "INVITE_CREATE",
        "INVITE_DELETE",
        "TYPING_START",
    }
)

KNOWN_TYPES: Final = frozenset(_MEMBERS) | frozenset(_OWN_ID) | _CHANNEL_ID


def field(payload: Any, name: str) -> Any:
    """``payload[name]`` of a dict, ``payload.name`` of a Struct; None when absent."""
    if isinstance(payload, dict):
        return payload.get(name)
    return getattr(payload, name, None)


def to_id(value: Any) -> int | None:
    """An id from its wire form (a decimal string, or an int); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return parse_id(value)


def gate(event_type: str, payload: Any) -> Gate:
    """Who may receive ``event_type`` with ``payload`` on a guild stream.

    An event type the table does not know is gated on VIEW_CHANNEL of its payload's
    ``channel_id`` when it has one (new message-like events then work unchanged), and
    otherwise reaches nobody: a new guild-wide event must be added to the table above before
    anyone gets it, rather than leak to every member. A channel-gated event whose id is
    missing or malformed also reaches nobody.
    """
    timing = _MEMBERS.get(event_type)
    if timing is not None:
        leaver = None
        if event_type in LEAVES:
            leaver = to_id(field(field(payload, "user"), "id"))
        return Gate(Scope.MEMBERS, timing=timing, user_id=leaver)
    timing = _OWN_ID.get(event_type)
    if timing is not None:
        channel_id = to_id(field(payload, "id"))
    else:
        timing = Timing.BEFORE
        channel_id = to_id(field(payload, "channel_id"))
    if channel_id is None:
        return NOBODY
    return Gate(Scope.CHANNEL, channel_id, timing)


def role_ids_of(raw: Iterable[Any], guild_id: int) -> tuple[int, ...]:
    """A member's roles (``roles`` of a member event) as sorted ids, without @everyone."""
    return tuple(sorted({r for r in map(to_id, raw) if r is not None and r != guild_id}))


def sort_overwrites(overwrites: Iterable[Overwrite]) -> tuple[Overwrite, ...]:
    """One canonical order, so that equal sets compare equal."""
    return tuple(sorted(overwrites, key=lambda o: (o.type, o.id)))


def overwrites_of(raw: Iterable[Any]) -> tuple[Overwrite, ...]:
    """A channel event's ``permission_overwrites`` (wire form: string ids and bits)."""
    found = []
    for item in raw:
        target, kind = to_id(field(item, "id")), field(item, "type")
        if target is None or kind not in (OVERWRITE_ROLE, OVERWRITE_MEMBER):
            continue  # an overwrite of another type matches nothing in the rules either
        allow, deny = int(field(item, "allow") or 0), int(field(item, "deny") or 0)
        found.append(Overwrite(id=target, type=kind, allow=allow, deny=deny))
    return sort_overwrites(found)
