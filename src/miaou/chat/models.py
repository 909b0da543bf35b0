"""Chat wire shapes for guilds, roles, channels, members, invites and bans.

Field names follow Discord's API v10 where one exists. Ids and permission bitfields travel
as strings. Request bodies refuse unknown fields. Message shapes are in ``message_models``.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from miaou.accounts.models import Strict, User

UNSET: Any = msgspec.UNSET
Unset = msgspec.UnsetType


class ChannelType(enum.IntEnum):
    """Discord's channel type numbers (the ones Miaou has)."""

    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GROUP_DM = 3
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    ANNOUNCEMENT_THREAD = 10
    PUBLIC_THREAD = 11
    PRIVATE_THREAD = 12
    GUILD_STAGE_VOICE = 13
    GUILD_FORUM = 15


GUILD_CHANNEL_TYPES = frozenset(
    {
        ChannelType.GUILD_TEXT,
        ChannelType.GUILD_VOICE,
        ChannelType.GUILD_CATEGORY,
        ChannelType.GUILD_ANNOUNCEMENT,
        ChannelType.GUILD_STAGE_VOICE,
        ChannelType.GUILD_FORUM,
    }
)
THREAD_TYPES = frozenset(
    {ChannelType.ANNOUNCEMENT_THREAD, ChannelType.PUBLIC_THREAD, ChannelType.PRIVATE_THREAD}
)
VOICE_TYPES = frozenset({ChannelType.GUILD_VOICE, ChannelType.GUILD_STAGE_VOICE})
TEXT_TYPES = frozenset(
    {
        ChannelType.GUILD_TEXT,
        ChannelType.GUILD_ANNOUNCEMENT,
        ChannelType.DM,
        ChannelType.GROUP_DM,
        *THREAD_TYPES,
        *VOICE_TYPES,
    }
)
MAX_SLOWMODE = 21_600


# -- requests ---------------------------------------------------------------------------
class GuildCreate(Strict):
    name: str
    description: str = ""


class GuildPatch(Strict):
    name: str | Unset = UNSET
    description: str | Unset = UNSET
    icon: str | Unset | None = UNSET
    system_channel_id: str | Unset | None = UNSET


class OwnershipTransfer(Strict):
    owner_id: str


class OverwriteBody(Strict):
    id: str
    type: int  # 0 role, 1 member
    allow: str = "0"
    deny: str = "0"


class ChannelCreate(Strict):
    name: str
    type: int = ChannelType.GUILD_TEXT
    topic: str | None = None
    position: int | None = None
    parent_id: str | None = None
    nsfw: bool = False
    rate_limit_per_user: int = 0
    bitrate: int | None = None
    user_limit: int | None = None
    permission_overwrites: list[OverwriteBody] = msgspec.field(default_factory=list)


class ForumTag(Strict):
    name: str
    id: str | None = None  # None: a new tag
    emoji: str | None = None
    moderated: bool = False


class ChannelPatch(Strict):
    """Guild channels; the thread fields apply to threads (PATCH /channels/{id} serves both)."""

    name: str | Unset = UNSET
    topic: str | Unset | None = UNSET
    position: int | Unset = UNSET
    parent_id: str | Unset | None = UNSET
    nsfw: bool | Unset = UNSET
    rate_limit_per_user: int | Unset = UNSET
    bitrate: int | Unset | None = UNSET
    user_limit: int | Unset | None = UNSET
    available_tags: list[ForumTag] | Unset = UNSET
    # Threads only.
    archived: bool | Unset = UNSET
    locked: bool | Unset = UNSET
    auto_archive_duration: int | Unset = UNSET
    applied_tags: list[str] | Unset = UNSET


class ChannelPosition(Strict):
    id: str
    position: int
    parent_id: str | Unset | None = UNSET


class RoleCreate(Strict):
    name: str = "new role"
    permissions: str | Unset = UNSET
    color: int = 0
    hoist: bool = False
    mentionable: bool = False


class RolePatch(Strict):
    name: str | Unset = UNSET
    permissions: str | Unset = UNSET
    color: int | Unset = UNSET
    hoist: bool | Unset = UNSET
    mentionable: bool | Unset = UNSET


class RolePosition(Strict):
    id: str
    position: int


class MemberPatch(Strict):
    nick: str | Unset | None = UNSET
    roles: list[str] | Unset = UNSET
    communication_disabled_until: int | Unset | None = UNSET


class InviteCreate(Strict):
    max_age: int = 86_400  # seconds; 0: never expires
    max_uses: int = 0  # 0: unlimited
    temporary: bool = False


class BanCreate(Strict):
    reason: str | None = None
    delete_message_seconds: int = 0


class DMCreate(Strict):
    recipient_id: str | Unset = UNSET
    recipient_ids: list[str] | Unset = UNSET
    name: str | None = None


# -- responses --------------------------------------------------------------------------
class Role(msgspec.Struct, kw_only=True):
    id: str
    name: str
    color: int
    position: int
    hoist: bool
    mentionable: bool
    permissions: str


class Overwrite(msgspec.Struct, kw_only=True):
    id: str
    type: int
    allow: str
    deny: str


class Channel(msgspec.Struct, kw_only=True):
    id: str
    type: int
    guild_id: str | None = None
    name: str | None = None
    topic: str | None = None
    position: int = 0
    parent_id: str | None = None
    nsfw: bool = False
    rate_limit_per_user: int = 0
    bitrate: int | None = None
    user_limit: int | None = None
    last_message_id: str | None = None
    owner_id: str | None = None
    permission_overwrites: list[Overwrite] | None = None
    recipients: list[User] | None = None
    thread_metadata: dict[str, Any] | None = None
    message_count: int | None = None
    available_tags: list[dict[str, Any]] | None = None
    applied_tags: list[str] | None = None


class Member(msgspec.Struct, kw_only=True):
    user: User
    nick: str | None
    roles: list[str]
    joined_at: int
    temporary: bool
    communication_disabled_until: int | None


class Guild(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    icon: str | None
    owner_id: str
    system_channel_id: str | None
    roles: list[Role]
    member_count: int
    created_at: int


class GuildWithChannels(Guild, kw_only=True):
    channels: list[Channel]


class JoinedGuild(GuildWithChannels, kw_only=True):
    """A guild as a member is shown it (READY's guilds, GUILD_JOIN): only the channels they
    may view, each with its overwrites, and their own member object."""

    member: Member


class Invite(msgspec.Struct, kw_only=True):
    code: str
    guild_id: str
    channel_id: str
    inviter_id: str | None
    max_uses: int
    uses: int
    expires_at: int | None
    temporary: bool
    created_at: int


class Ban(msgspec.Struct, kw_only=True):
    user: User
    reason: str | None


class AuditEntry(msgspec.Struct, kw_only=True):
    id: str
    action: str
    actor_id: str | None
    target_id: str | None
    changes: dict[str, Any] | None
    reason: str | None
