"""The audio wing: tracks, their shares and files, plays; node secrets (media URL signing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_node_secrets")),
    )
    op.create_table(
        "tracks",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("artist", sa.String(length=200), nullable=True),
        sa.Column("album", sa.String(length=200), nullable=True),
        sa.Column("genre", sa.String(length=100), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("track_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("tags", sa.Text(), server_default="", nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=False),
        sa.Column("secret", sa.String(length=32), nullable=False),
        sa.Column("release_at", sa.BigInteger(), nullable=True),
        sa.Column("downloadable", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column("original_size", sa.BigInteger(), nullable=False),
        sa.Column("original_filename", sa.String(length=255), nullable=False),
        sa.Column("container", sa.String(length=16), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("lossless", sa.Boolean(), nullable=False),
        sa.Column("duration_ms", sa.BigInteger(), nullable=False),
        sa.Column("loudness_lufs", sa.Float(), nullable=True),
        sa.Column("true_peak_dbtp", sa.Float(), nullable=True),
        sa.Column("replaygain_db", sa.Float(), nullable=True),
        sa.Column("replaygain_peak", sa.Float(), nullable=True),
        sa.Column("bpm", sa.Float(), nullable=True),
        sa.Column("cover_80", sa.String(length=64), nullable=True),
        sa.Column("cover_300", sa.String(length=64), nullable=True),
        sa.Column("cover_1000", sa.String(length=64), nullable=True),
        sa.Column("plays", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_tracks_owner_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracks")),
    )
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracks_owner_id_id"), ["owner_id", "id"])
        batch_op.create_index(
            batch_op.f("ix_tracks_owner_id_original_sha256"), ["owner_id", "original_sha256"]
        )
        batch_op.create_index(batch_op.f("ix_tracks_visibility_id"), ["visibility", "id"])

    def track_fk(table: str) -> sa.ForeignKeyConstraint:
        return sa.ForeignKeyConstraint(
            ["track_id"],
            ["tracks.id"],
            name=op.f(f"fk_{table}_track_id_tracks"),
            ondelete="CASCADE",
        )

    op.create_table(
        "track_shares",
        sa.Column("track_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        track_fk("track_shares"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_track_shares_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("track_id", "user_id", name=op.f("pk_track_shares")),
    )
    op.create_table(
        "track_files",
        sa.Column("track_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        track_fk("track_files"),
        sa.PrimaryKeyConstraint("track_id", "version", "name", name=op.f("pk_track_files")),
    )
    with op.batch_alter_table("track_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_track_files_sha256"), ["sha256"])
    op.create_table(
        "track_listens",
        sa.Column("track_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("listener", sa.String(length=64), nullable=False),
        sa.Column("counted_at", sa.BigInteger(), nullable=False),
        track_fk("track_listens"),
        sa.PrimaryKeyConstraint("track_id", "listener", name=op.f("pk_track_listens")),
    )
    op.create_table(
        "track_play_days",
        sa.Column("track_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("plays", sa.BigInteger(), nullable=False),
        sa.Column("listeners", sa.BigInteger(), nullable=False),
        track_fk("track_play_days"),
        sa.PrimaryKeyConstraint("track_id", "day", name=op.f("pk_track_play_days")),
    )
    op.create_table(
        "track_day_listeners",
        sa.Column("track_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("day", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("listener", sa.String(length=64), nullable=False),
        track_fk("track_day_listeners"),
        sa.PrimaryKeyConstraint("track_id", "day", "listener", name=op.f("pk_track_day_listeners")),
    )


def downgrade() -> None:
    op.drop_table("track_day_listeners")
    op.drop_table("track_play_days")
    op.drop_table("track_listens")
    with op.batch_alter_table("track_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_track_files_sha256"))
    op.drop_table("track_files")
    op.drop_table("track_shares")
    with op.batch_alter_table("tracks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracks_visibility_id"))
        batch_op.drop_index(batch_op.f("ix_tracks_owner_id_original_sha256"))
        batch_op.drop_index(batch_op.f("ix_tracks_owner_id_id"))
    op.drop_table("tracks")
    op.drop_table("node_secrets")
