"""Chat tables (SQLAlchemy Core), on the one shared ``MetaData``.

Ids are snowflakes; times are Unix milliseconds; permission bitfields are 64-bit integers.
Discord conventions kept where they help: the ``@everyone`` role's id is the guild's id,
threads are channels whose ``parent_id`` is the channel they live in.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)

from miaou.db.metadata import metadata


def _user_fk(name: str, *, nullable: bool = False, ondelete: str = "CASCADE") -> Column[int]:
    return Column(name, BigInteger, ForeignKey("users.id", ondelete=ondelete), nullable=nullable)


guilds = Table(
    "guilds",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(100), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("icon", String(64), nullable=True),
    _user_fk("owner_id", ondelete="RESTRICT"),
    # No foreign key: channels reference guilds, and the cycle would complicate deletes.
    Column("system_channel_id", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

roles = Table(
    "roles",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("color", Integer, nullable=False, server_default="0"),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("hoist", Boolean, nullable=False, server_default=false()),
    Column("mentionable", Boolean, nullable=False, server_default=false()),
    Column("permissions", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "guild_id", "position"),
)

members = Table(
    "members",
    metadata,
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("nick", String(32), nullable=True),
    Column("joined_at", BigInteger, nullable=False),
    # Joined through a temporary invite: removed when they go offline (gateway issue).
    Column("temporary", Boolean, nullable=False, server_default=false()),
    # Timeout (MODERATE_MEMBERS): read-only until then.
    Column("communication_disabled_until", BigInteger, nullable=True),
    Index(None, "user_id"),
)

member_roles = Table(
    "member_roles",
    metadata,
    Column("guild_id", BigInteger, primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("role_id", BigInteger, ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True),
    ForeignKeyConstraint(
        ["guild_id", "user_id"], ["members.guild_id", "members.user_id"], ondelete="CASCADE"
    ),
    Index(None, "role_id"),
)

channels = Table(
    "channels",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    # Null for direct messages and group DMs.
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=True),
    Column("type", SmallInteger, nullable=False),
    Column("name", String(100), nullable=True),
    Column("topic", String(4096), nullable=True),
    Column("position", Integer, nullable=False, server_default="0"),
    # A category for channels; the containing channel for threads.
    Column("parent_id", BigInteger, nullable=True),
    Column("nsfw", Boolean, nullable=False, server_default=false()),
    Column("rate_limit_per_user", Integer, nullable=False, server_default="0"),
    Column("bitrate", Integer, nullable=True),
    Column("user_limit", Integer, nullable=True),
    # Thread creator or group DM owner.
    Column("owner_id", BigInteger, nullable=True),
    Column("last_message_id", BigInteger, nullable=True),
    Column("message_count", Integer, nullable=False, server_default="0"),
    # Threads.
    Column("archived", Boolean, nullable=False, server_default=false()),
    Column("locked", Boolean, nullable=False, server_default=false()),
    Column("auto_archive_duration", Integer, nullable=True),
    Column("archive_timestamp", BigInteger, nullable=True),
    # Forums: available tags on the forum, applied tag ids on its posts.
    Column("available_tags", JSON, nullable=True),
    Column("applied_tags", JSON, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "guild_id", "position"),
    Index(None, "parent_id"),
)

overwrites = Table(
    "overwrites",
    metadata,
    Column(
        "channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("target_id", BigInteger, primary_key=True),
    Column("target_type", SmallInteger, nullable=False),  # 0 role, 1 member
    Column("allow", BigInteger, nullable=False, server_default="0"),
    Column("deny", BigInteger, nullable=False, server_default="0"),
)

channel_recipients = Table(
    "channel_recipients",
    metadata,
    Column(
        "channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Index(None, "user_id"),
)

thread_members = Table(
    "thread_members",
    metadata,
    Column(
        "channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("joined_at", BigInteger, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    Column("guild_id", BigInteger, nullable=True),
    _user_fk("author_id"),
    Column("type", SmallInteger, nullable=False, server_default="0"),
    Column("content", Text, nullable=False),
    Column("reference_id", BigInteger, nullable=True),
    Column("mention_everyone", Boolean, nullable=False, server_default=false()),
    Column("mentions", JSON, nullable=False),
    Column("mention_roles", JSON, nullable=False),
    Column("mention_channels", JSON, nullable=False),
    Column("pinned_at", BigInteger, nullable=True),
    Column("edited_at", BigInteger, nullable=True),
    # Tombstone: content is cleared, the row stays for history, replies and audit.
    Column("deleted_at", BigInteger, nullable=True),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("has_attachments", Boolean, nullable=False, server_default=false()),
    Column("has_link", Boolean, nullable=False, server_default=false()),
    # Thread started from this message.
    Column("thread_id", BigInteger, nullable=True),
    Index(None, "channel_id", "id"),
    Index(None, "guild_id", "author_id"),
)

message_nonces = Table(
    "message_nonces",
    metadata,
    Column("author_id", BigInteger, primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

message_versions = Table(
    "message_versions",
    metadata,
    Column(
        "message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("version", Integer, primary_key=True),
    Column("content", Text, nullable=False),
    # When this version was replaced.
    Column("replaced_at", BigInteger, nullable=False),
)

reactions = Table(
    "reactions",
    metadata,
    Column(
        "message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    ),
    # A unicode emoji, or "name:id" for a custom one.
    Column("emoji", String(128), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

attachments = Table(
    "attachments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, ForeignKey("messages.id", ondelete="CASCADE"), nullable=True),
    Column("channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    _user_fk("uploader_id"),
    Column("filename", String(255), nullable=False),
    Column("content_type", String(127), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("width", Integer, nullable=True),
    Column("height", Integer, nullable=True),
    Column("thumbnail_sha256", String(64), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "message_id"),
)

guild_invites = Table(
    "guild_invites",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
    Column("channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), nullable=False),
    _user_fk("inviter_id", nullable=True, ondelete="SET NULL"),
    Column("max_uses", Integer, nullable=False, server_default="0"),  # 0: unlimited
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("expires_at", BigInteger, nullable=True),
    Column("temporary", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "guild_id"),
)

bans = Table(
    "bans",
    metadata,
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("reason", String(512), nullable=True),
    Column("moderator_id", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)

read_states = Table(
    "read_states",
    metadata,
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "channel_id", BigInteger, ForeignKey("channels.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("last_read_id", BigInteger, nullable=False, server_default="0"),
    Column("mention_count", Integer, nullable=False, server_default="0"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
    Column("actor_id", BigInteger, nullable=True),
    Column("action", SmallInteger, nullable=False),
    Column("target_id", BigInteger, nullable=True),
    Column("changes", JSON, nullable=True),
    Column("reason", String(512), nullable=True),
    Index(None, "guild_id", "id"),
)

guild_emojis = Table(
    "guild_emojis",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("guild_id", BigInteger, ForeignKey("guilds.id", ondelete="CASCADE"), nullable=False),
    # Not unique in a guild, as in Discord: the id names an emoji, the name is a label.
    Column("name", String(32), nullable=False),
    # The creator; the emoji outlives their account.
    _user_fk("user_id", nullable=True, ondelete="SET NULL"),
    # The image, in the emoji blob store (content-addressed), and its sniffed type.
    Column("sha256", String(64), nullable=False),
    Column("content_type", String(32), nullable=False),
    Column("animated", Boolean, nullable=False, server_default=false()),
    Column("created_at", BigInteger, nullable=False),
    Index(None, "guild_id"),
    Index(None, "sha256"),
)
