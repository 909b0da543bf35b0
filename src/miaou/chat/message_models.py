"""Wire shapes of messages, their versions, pins and reactions (Discord API v10 names).

Ids travel as strings; times are Unix milliseconds. Request bodies refuse unknown fields.
Event payloads are here too, so the gateway documentation has one place to point at.
"""

from __future__ import annotations

import enum
from typing import Any, Literal

import msgspec

from miaou.accounts.models import Strict, User
from miaou.chat.models import Channel

UNSET: Any = msgspec.UNSET
Unset = msgspec.UnsetType

CONTENT_MAX = 4000
NONCE_MAX = 25
HISTORY_LIMIT_DEFAULT = 50
HISTORY_LIMIT_MAX = 100
REACTIONS_LIMIT_DEFAULT = 25
REACTIONS_LIMIT_MAX = 100


class MessageType(enum.IntEnum):
    """Discord's message type numbers (the ones Miaou makes so far)."""

    DEFAULT = 0
    REPLY = 19


# -- requests ---------------------------------------------------------------------------
class MessageReferenceBody(Strict):
    message_id: str
    # Accepted for Discord compatibility; must name this channel (and its guild) if given.
    channel_id: str | None = None
    guild_id: str | None = None
    # False: send as a plain message when the referenced one does not exist.
    fail_if_not_exists: bool = True


class AllowedMentions(Strict):
    """Narrows which of the parsed mentions take effect (Discord's semantics).

    Absent from a request, every parsed mention may take effect. Present, nothing does
    unless named: ``parse`` lets a whole kind through; ``users``/``roles`` let listed ids
    through (and may not be combined with the same kind in ``parse``).
    """

    parse: list[Literal["users", "roles", "everyone"]] = msgspec.field(default_factory=list)
    users: list[str] = msgspec.field(default_factory=list)
    roles: list[str] = msgspec.field(default_factory=list)
    replied_user: bool = False


class MessageCreate(Strict):
    content: str
    # Discord: an integer or a string of at most 25 characters.
    nonce: str | int | None = None
    message_reference: MessageReferenceBody | None = None
    allowed_mentions: AllowedMentions | None = None


class MessageCreateWithFiles(MessageCreate, kw_only=True):
    """``payload_json`` of a multipart send: the files may stand for the content."""

    content: str = ""


class MessagePatch(Strict):
    content: str
    allowed_mentions: AllowedMentions | None = None


# -- responses --------------------------------------------------------------------------
class Emoji(msgspec.Struct, kw_only=True):
    """A unicode emoji (``id`` null, ``name`` the emoji) or a custom one (both set)."""

    id: str | None
    name: str


class Reaction(msgspec.Struct, kw_only=True):
    emoji: Emoji
    count: int
    me: bool


class MessageReference(msgspec.Struct, kw_only=True):
    message_id: str
    channel_id: str
    guild_id: str | None


class Attachment(msgspec.Struct, kw_only=True):
    """A file of a message. ``url`` and ``proxy_url`` (the thumbnail of an image) are paths
    on this node, served only to those who may read the channel's history."""

    id: str
    filename: str
    size: int
    content_type: str
    width: int | None
    height: int | None
    url: str
    proxy_url: str | None


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    channel_id: str
    guild_id: str | None
    author: User
    content: str
    timestamp: int  # from the id
    edited_timestamp: int | None
    mentions: list[User]
    mention_roles: list[str]
    mention_everyone: bool
    pinned: bool
    type: int
    # No default, so that an empty list is still sent (``omit_defaults`` would drop it).
    attachments: list[Attachment]
    message_reference: MessageReference | None = None
    # A reply's referenced message (one level: its own ``referenced_message`` is left out),
    # null once that message is deleted; absent when the message is not a reply.
    referenced_message: Message | Unset | None = UNSET
    # Echoed on the answer to the send that carried it, as Discord does.
    nonce: str | int | None = None
    # Omitted from gateway events: ``me`` differs per recipient, and a broadcast frame is
    # encoded once for everyone.
    reactions: list[Reaction] | Unset = UNSET
    # The thread started from this message (Discord's ``thread``); absent when none.
    thread: Channel | Unset = UNSET


class MessageVersion(msgspec.Struct, kw_only=True):
    """A previous content of an edited message; version 1 is the original."""

    version: int
    content: str
    # When this content was written (the send, or the edit that produced it) and replaced.
    created_at: int
    replaced_at: int


# -- event payloads ---------------------------------------------------------------------
class MessageDeleted(msgspec.Struct, kw_only=True):
    id: str
    channel_id: str
    guild_id: str | None


class ReactionEvent(msgspec.Struct, kw_only=True):
    user_id: str
    channel_id: str
    message_id: str
    guild_id: str | None
    emoji: Emoji


class PinsUpdate(msgspec.Struct, kw_only=True):
    channel_id: str
    guild_id: str | None
    last_pin_timestamp: int | None
