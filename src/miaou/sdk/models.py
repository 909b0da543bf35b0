"""Typed shapes of the node's answers (ids are strings, as on the wire)."""

from __future__ import annotations

from typing import Any

import msgspec


class User(msgspec.Struct, kw_only=True):
    id: str
    username: str
    display_name: str | None
    bio: str
    created_at: int


class Me(User, kw_only=True):
    is_admin: bool


class AuthResult(msgspec.Struct, kw_only=True):
    token: str
    session_id: str
    user: Me


class Session(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    last_used_at: int
    user_agent: str
    ip: str
    current: bool


class Invite(msgspec.Struct, kw_only=True):
    code: str
    max_uses: int | None
    uses: int
    expires_at: int | None
    created_at: int
    created_by: str | None


# -- messages -------------------------------------------------------------------------------
class Emoji(msgspec.Struct, kw_only=True):
    """``id`` is None for a unicode emoji; set (with its ``name``) for a custom one."""

    id: str | None
    name: str


class Reaction(msgspec.Struct, kw_only=True):
    emoji: Emoji
    count: int
    me: bool


class MessageReference(msgspec.Struct, kw_only=True):
    message_id: str
    channel_id: str
    guild_id: str | None = None


class Attachment(msgspec.Struct, kw_only=True):
    """``url`` and ``proxy_url`` (an image's thumbnail) are paths on the node: fetch them
    with :meth:`Client.download_attachment`."""

    id: str
    filename: str
    size: int
    content_type: str
    width: int | None = None
    height: int | None = None
    url: str
    proxy_url: str | None = None


class Message(msgspec.Struct, kw_only=True):
    id: str
    channel_id: str
    guild_id: str | None
    author: User
    content: str
    timestamp: int
    edited_timestamp: int | None
    mentions: list[User]
    mention_roles: list[str]
    mention_everyone: bool
    pinned: bool
    type: int
    message_reference: MessageReference | None = None
    # A reply's quote: the message it answers, None once deleted; UNSET when not a reply.
    referenced_message: Message | msgspec.UnsetType | None = msgspec.UNSET
    nonce: str | int | None = None
    reactions: list[Reaction] = msgspec.field(default_factory=list)
    attachments: list[Attachment] = msgspec.field(default_factory=list)
    # The thread started from this message (a channel object), None when none.
    thread: dict[str, Any] | None = None


class MessageVersion(msgspec.Struct, kw_only=True):
    version: int
    content: str
    created_at: int
    replaced_at: int


# -- gateway --------------------------------------------------------------------------------
class GatewayEvent(msgspec.Struct, frozen=True):
    """One dispatched event (op 0): its name ``t``, payload ``d``, position ``s`` in stream
    ``st``. ``s`` and ``st`` are None for ephemeral events (typing, presence), for ``READY`` /
    ``RESUMED`` and for the client's own synthetic ``SESSION_INVALIDATED``."""

    t: str
    d: Any = None
    s: int | None = None
    st: str | None = None
