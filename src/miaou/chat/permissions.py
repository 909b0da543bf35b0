"""Pure permission rules of the chat wing, after Discord API v10.

Plain functions over plain data: no database, no I/O. The service layer loads roles,
overwrites and the member, calls these, and turns a refusal into :class:`Forbidden`.

In a channel (``channel_permissions``), in Discord's order:

1. the guild owner, and anyone whose roles hold ADMINISTRATOR, get ``ALL``; nothing below
   applies to them (not overwrites, not timeouts);
2. base = @everyone's permissions | every role of the member;
3. the @everyone overwrite: deny, then allow;
4. the overwrites of the member's roles, combined: all their denies, then all their allows
   (so one role's allow beats another role's deny);
5. the member's own overwrite: deny, then allow;
6. a timed-out member keeps only VIEW_CHANNEL and READ_MESSAGE_HISTORY;
7. implicit rules: no VIEW_CHANNEL -> nothing at all; no SEND_MESSAGES (SEND_MESSAGES_IN_THREADS
   in a thread) -> no MENTION_EVERYONE, SEND_TTS_MESSAGES, ATTACH_FILES, EMBED_LINKS.

ADMINISTRATOR in an overwrite is ignored: the bypass is granted by guild roles only.

Refusals are :class:`Decision` values carrying a stable error code, never booleans alone, so
the caller can tell the user *why*.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from functools import reduce
from operator import or_
from typing import Final, Literal

import msgspec

from miaou.errors import Forbidden, InvalidInput


class Permission(enum.IntFlag):
    """Discord's permission bits, same values, so numbers from Discord tooling mean the same."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_AUDIT_LOG = 1 << 7
    PRIORITY_SPEAKER = 1 << 8
    STREAM = 1 << 9
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    SEND_TTS_MESSAGES = 1 << 12
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    VIEW_GUILD_INSIGHTS = 1 << 19
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    MUTE_MEMBERS = 1 << 22
    DEAFEN_MEMBERS = 1 << 23
    MOVE_MEMBERS = 1 << 24
    USE_VAD = 1 << 25
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    MANAGE_GUILD_EXPRESSIONS = 1 << 30
    USE_APPLICATION_COMMANDS = 1 << 31
    REQUEST_TO_SPEAK = 1 << 32
    MANAGE_EVENTS = 1 << 33
    MANAGE_THREADS = 1 << 34
    CREATE_PUBLIC_THREADS = 1 << 35
    CREATE_PRIVATE_THREADS = 1 << 36
    USE_EXTERNAL_STICKERS = 1 << 37
    SEND_MESSAGES_IN_THREADS = 1 << 38
    USE_EMBEDDED_ACTIVITIES = 1 << 39
    MODERATE_MEMBERS = 1 << 40
    VIEW_CREATOR_MONETIZATION_ANALYTICS = 1 << 41
    USE_SOUNDBOARD = 1 << 42
    CREATE_GUILD_EXPRESSIONS = 1 << 43
    CREATE_EVENTS = 1 << 44
    USE_EXTERNAL_SOUNDS = 1 << 45
    SEND_VOICE_MESSAGES = 1 << 46
    # Bits 47 and 48 are not in Discord's documented table; they stay invalid here.
    SEND_POLLS = 1 << 49
    USE_EXTERNAL_APPS = 1 << 50
    PIN_MESSAGES = 1 << 51
    BYPASS_SLOWMODE = 1 << 52


P = Permission
NONE: Final = Permission(0)
ALL: Final[Permission] = reduce(or_, Permission, NONE)
# What @everyone gets in a new guild: talk, react, thread, voice; not MENTION_EVERYONE, nor
# anything that moderates or manages.
DEFAULT_EVERYONE: Final = (
    P.CREATE_INSTANT_INVITE | P.CHANGE_NICKNAME | P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY
    | P.SEND_MESSAGES | P.SEND_MESSAGES_IN_THREADS | P.CREATE_PUBLIC_THREADS
    | P.CREATE_PRIVATE_THREADS | P.EMBED_LINKS | P.ATTACH_FILES | P.ADD_REACTIONS
    | P.USE_EXTERNAL_EMOJIS | P.USE_EXTERNAL_STICKERS | P.USE_APPLICATION_COMMANDS
    | P.SEND_VOICE_MESSAGES | P.SEND_POLLS | P.CONNECT | P.SPEAK | P.STREAM | P.USE_VAD
    | P.USE_EMBEDDED_ACTIVITIES | P.USE_SOUNDBOARD | P.REQUEST_TO_SPEAK
)  # fmt: skip
# Dropped when the member cannot send where they are (Discord's implicit rule).
NEEDS_SEND: Final = P.MENTION_EVERYONE | P.SEND_TTS_MESSAGES | P.ATTACH_FILES | P.EMBED_LINKS
TIMEOUT_KEEPS: Final = P.VIEW_CHANNEL | P.READ_MESSAGE_HISTORY
# ADMINISTRATOR is a guild-level grant; an overwrite carrying it is ignored for that bit so a
# channel can never hand out the bypass.
_OVERWRITABLE: Final = int(ALL) & ~int(P.ADMINISTRATOR)

_DECIMAL = re.compile(r"[0-9]{1,20}")  # ASCII only: str.isdigit() would accept "²" and "٣"


def parse_permissions(value: str | int, *, field: str = "permissions") -> Permission:
    """Read a bitfield as Discord sends it (a decimal string; a plain int is accepted too).

    Raises InvalidInput (code ``invalid_permissions``) naming ``field`` for anything else:
    booleans, signs, spaces, hex, non-ASCII digits, negatives, and bits no flag defines.
    """

    def refuse(reason: str) -> InvalidInput:
        return InvalidInput(
            f"Invalid {field}: {reason}.", code="invalid_permissions", errors={field: [reason]}
        )

    if isinstance(value, bool) or not isinstance(value, str | int):
        raise refuse("must be a decimal string")
    if isinstance(value, str):
        if not _DECIMAL.fullmatch(value):
            raise refuse("must be a decimal string of at most 20 digits")
        value = int(value)
    if value < 0:
        raise refuse("must not be negative")
    if unknown := value & ~int(ALL):
        raise refuse(f"unknown permission bits {unknown}")
    return Permission(value)


def format_permissions(permissions: int) -> str:
    """The wire form: a decimal string, because the bitfield outgrows JavaScript's 2**53."""
    return str(int(permissions))


class RoleInfo(msgspec.Struct, frozen=True):
    id: int  # the @everyone role's id is the guild's id
    position: int
    permissions: int


OVERWRITE_ROLE: Final = 0
OVERWRITE_MEMBER: Final = 1


class Overwrite(msgspec.Struct, frozen=True):
    id: int  # a role id (the guild id for @everyone) or a user id, per ``type``
    type: Literal[0, 1]  # OVERWRITE_ROLE or OVERWRITE_MEMBER
    allow: int = 0
    deny: int = 0


class MemberInfo(msgspec.Struct, frozen=True):
    user_id: int
    role_ids: frozenset[int] = frozenset()
    is_owner: bool = False


def base_permissions(
    member: MemberInfo, everyone: RoleInfo, roles: Mapping[int, RoleInfo]
) -> Permission:
    """Guild-level permissions: owner or ADMINISTRATOR -> ALL, else @everyone | the member's roles.

    Role ids missing from ``roles`` (a role deleted meanwhile) grant nothing. Not masked for
    timeouts: pass it to ``channel_permissions``, or through ``apply_timeout`` for guild checks.
    """
    if member.is_owner:
        return ALL
    bits = everyone.permissions
    for role_id in member.role_ids:
        if (role := roles.get(role_id)) is not None:
            bits |= role.permissions
    perms = Permission(bits & int(ALL))
    return ALL if P.ADMINISTRATOR in perms else perms


def apply_timeout(permissions: Permission) -> Permission:
    """What a timed-out member keeps: VIEW_CHANNEL and READ_MESSAGE_HISTORY; admins keep all."""
    return permissions if P.ADMINISTRATOR in permissions else permissions & TIMEOUT_KEEPS


def _overwritten(
    base: Permission,
    member: MemberInfo,
    guild_id: int,
    overwrites: Iterable[Overwrite],
    timed_out: bool,
) -> Permission:
    """Steps 1-6 and the VIEW_CHANNEL rule; the SEND rule is left to the caller."""
    if member.is_owner or P.ADMINISTRATOR in base:
        return ALL
    # Each layer's denies and allows are OR-ed before use, so input order never matters.
    layers = {"everyone": [0, 0], "roles": [0, 0], "member": [0, 0]}
    for ow in overwrites:
        if ow.type == OVERWRITE_ROLE and ow.id == guild_id:
            layer = layers["everyone"]
        elif ow.type == OVERWRITE_ROLE and ow.id in member.role_ids:
            layer = layers["roles"]
        elif ow.type == OVERWRITE_MEMBER and ow.id == member.user_id:
            layer = layers["member"]
        else:
            continue
        layer[0] |= ow.deny & _OVERWRITABLE
        layer[1] |= ow.allow & _OVERWRITABLE
    bits = int(base)
    for deny, allow in layers.values():  # dicts keep insertion order: everyone, roles, member
        bits = (bits & ~deny) | allow
    perms = Permission(bits & int(ALL))
    if timed_out:
        perms &= TIMEOUT_KEEPS
    # A channel one cannot see grants nothing.
    return perms if P.VIEW_CHANNEL in perms else NONE


def _send_rule(perms: Permission, send: Permission) -> Permission:
    return perms if send in perms else perms & ~NEEDS_SEND


def channel_permissions(
    base: Permission,
    member: MemberInfo,
    guild_id: int,
    overwrites: Iterable[Overwrite],
    *,
    timed_out: bool = False,
    thread: bool = False,
) -> Permission:
    """The member's permissions in a channel, from ``base_permissions`` and its overwrites.

    ``thread=True``: in a thread whose parent has these overwrites (see thread_permissions).
    """
    perms = _overwritten(base, member, guild_id, overwrites, timed_out)
    return thread_permissions(perms) if thread else _send_rule(perms, P.SEND_MESSAGES)


def thread_permissions(parent_permissions: Permission) -> Permission:
    """A thread has its parent channel's permissions, except that posting in it takes
    SEND_MESSAGES_IN_THREADS (SEND_MESSAGES has no effect there, though it still lets one
    start a forum post), so that bit, not SEND_MESSAGES, decides whether NEEDS_SEND survives.

    Exact when given the parent's permissions computed with ``thread=True``; from a plain
    parent result, bits the parent's own SEND rule dropped (a read-only announcement channel
    whose threads are open) cannot come back. Who may see a *private* thread is a matter of
    thread membership or MANAGE_THREADS, not of these bits.
    """
    if P.VIEW_CHANNEL not in parent_permissions:
        return NONE
    return _send_rule(parent_permissions, P.SEND_MESSAGES_IN_THREADS)


def compute_permissions(
    member: MemberInfo,
    everyone: RoleInfo,
    roles: Mapping[int, RoleInfo],
    overwrites: Iterable[Overwrite],
    *,
    timed_out: bool = False,
    thread: bool = False,
) -> Permission:
    """``channel_permissions`` from raw guild data, in one call."""
    base = base_permissions(member, everyone, roles)
    return channel_permissions(
        base, member, everyone.id, overwrites, timed_out=timed_out, thread=thread
    )


# ----------------------------------------------------------------------------- hierarchy

MISSING_PERMISSIONS: Final = "missing_permissions"
ROLE_HIERARCHY: Final = "role_hierarchy"
TARGET_IS_OWNER: Final = "target_is_owner"
TARGET_IS_SELF: Final = "target_is_self"
TARGET_HIERARCHY: Final = "target_hierarchy"
TARGET_IS_ADMIN: Final = "target_is_admin"
PERMISSIONS_NOT_HELD: Final = "permissions_not_held"

_MESSAGES: Final = {
    MISSING_PERMISSIONS: "You lack the permission this needs.",
    ROLE_HIERARCHY: "That role is not below your highest role.",
    TARGET_IS_OWNER: "Nobody can do this to the server owner.",
    TARGET_IS_SELF: "You cannot do this to yourself.",
    TARGET_HIERARCHY: "That member's highest role is not below yours.",
    TARGET_IS_ADMIN: "Members with Administrator cannot be timed out.",
    PERMISSIONS_NOT_HELD: "You cannot grant permissions you do not have.",
}


class Decision(msgspec.Struct, frozen=True):
    """Truthy when allowed; when not, ``reason`` is a stable error code and ``missing`` the
    permission bits the actor lacked (if that was the reason)."""

    allowed: bool
    reason: str | None = None
    missing: int = 0

    def __bool__(self) -> bool:
        return self.allowed

    def enforce(self) -> None:
        """Raise Forbidden with the reason as its code, or do nothing if allowed."""
        if not self.allowed:
            raise Forbidden(_MESSAGES.get(self.reason or ""), code=self.reason)


ALLOWED: Final = Decision(True)


def _deny(reason: str, missing: int = 0) -> Decision:
    return Decision(False, reason, missing)


def highest_position(
    member: MemberInfo, roles: Mapping[int, RoleInfo], everyone: RoleInfo
) -> float:
    """Position of the member's highest role (@everyone's if none); the owner is above all."""
    if member.is_owner:
        return math.inf
    return max([everyone.position, *(roles[r].position for r in member.role_ids if r in roles)])


def can_manage_role(
    actor: MemberInfo,
    actor_permissions: Permission,
    role: RoleInfo,
    roles: Mapping[int, RoleInfo],
    everyone: RoleInfo,
) -> Decision:
    """Edit, delete, assign or remove ``role``: MANAGE_ROLES and the role strictly below the
    actor's highest. Changing its permissions also needs ``can_grant``."""
    if actor.is_owner:
        return ALLOWED
    if not actor_permissions & (P.MANAGE_ROLES | P.ADMINISTRATOR):
        return _deny(MISSING_PERMISSIONS, int(P.MANAGE_ROLES))
    if role.position >= highest_position(actor, roles, everyone):
        return _deny(ROLE_HIERARCHY)
    return ALLOWED


ModerationAction = Literal["kick", "ban", "nickname", "timeout"]
_REQUIRED: Final[Mapping[str, Permission]] = {
    "kick": P.KICK_MEMBERS,
    "ban": P.BAN_MEMBERS,
    "nickname": P.MANAGE_NICKNAMES,
    "timeout": P.MODERATE_MEMBERS,
}


def can_moderate(
    action: ModerationAction,
    actor: MemberInfo,
    target: MemberInfo,
    actor_permissions: Permission,
    roles: Mapping[int, RoleInfo],
    everyone: RoleInfo,
) -> Decision:
    """Kick, ban, rename or time out ``target``. ``actor_permissions`` are the actor's guild
    permissions as the caller sees them (``apply_timeout`` already applied if timed out).

    Nobody acts on the owner or (but for their own nickname, which takes CHANGE_NICKNAME) on
    themselves; admins cannot be timed out; the owner may do the rest to anyone; others need
    the permission and a highest role strictly above the target's.
    """
    is_self = actor.user_id == target.user_id
    needed = _REQUIRED[action]
    if is_self and action == "nickname":
        needed = P.CHANGE_NICKNAME  # MANAGE_NICKNAMES (or admin) also does, checked below
    if not (actor.is_owner or actor_permissions & (needed | _REQUIRED[action] | P.ADMINISTRATOR)):
        return _deny(MISSING_PERMISSIONS, int(needed))
    if is_self:
        return ALLOWED if action == "nickname" else _deny(TARGET_IS_SELF)
    if target.is_owner:
        return _deny(TARGET_IS_OWNER)
    if action == "timeout" and P.ADMINISTRATOR in base_permissions(target, everyone, roles):
        return _deny(TARGET_IS_ADMIN)
    if actor.is_owner:
        return ALLOWED
    if highest_position(actor, roles, everyone) <= highest_position(target, roles, everyone):
        return _deny(TARGET_HIERARCHY)
    return ALLOWED


def can_grant(actor_permissions: Permission, requested: int) -> Decision:
    """Put ``requested`` bits on a role or into an overwrite (pass allow | deny): a non-admin
    may only hand out, or take away, permissions they hold themselves."""
    held = int(ALL) if P.ADMINISTRATOR in actor_permissions else int(actor_permissions)
    missing = requested & ~held
    return _deny(PERMISSIONS_NOT_HELD, missing) if missing else ALLOWED
