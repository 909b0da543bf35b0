"""The schema, as SQLAlchemy Core tables: one schema for SQLite and PostgreSQL.

Times are integers of Unix milliseconds: exact, sortable and the same on both engines
(SQLite has no time zone-aware timestamp type). Ids are 64-bit snowflakes (``miaou.ids``).
Alembic migrations in ``migrations/versions`` build this schema; a test checks that the
migrated database and these tables agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

# Constraint names are fixed so migrations can refer to them on both engines.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

users = Table(
    "users",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("username", String(32), nullable=False),
    # NFKC + casefold of the username: uniqueness is case-insensitive, enforced by the index.
    Column("username_key", String(128), nullable=False, unique=True),
    Column("display_name", String(64), nullable=True),
    Column("bio", Text, nullable=False, server_default=""),
    Column("password_hash", String(255), nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("disabled_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # SHA-256 of the bearer token; the token itself is never stored.
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger, nullable=False),
    Column("user_agent", String(256), nullable=False, server_default=""),
    Column("ip", String(64), nullable=False, server_default=""),
    Index(None, "user_id", "last_used_at"),
)

registration_invites = Table(
    "registration_invites",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("created_by", BigInteger, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("max_uses", Integer, nullable=True),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("expires_at", BigInteger, nullable=True),
    Column("created_at", BigInteger, nullable=False),
)
