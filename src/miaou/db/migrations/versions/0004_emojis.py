"""Custom guild emoji: name, creator, and an image in the emoji blob store.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guild_emojis",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("animated", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["guild_id"],
            ["guilds.id"],
            name=op.f("fk_guild_emojis_guild_id_guilds"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_guild_emojis_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guild_emojis")),
    )
    with op.batch_alter_table("guild_emojis", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guild_emojis_guild_id"), ["guild_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_guild_emojis_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("guild_emojis", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guild_emojis_sha256"))
        batch_op.drop_index(batch_op.f("ix_guild_emojis_guild_id"))

    op.drop_table("guild_emojis")
