"""Tracks keep playing their previous version while a new upload is processed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.add_column(sa.Column("playable_version", sa.Integer(), nullable=True))
    # The newest version with files is the one that plays: a track being re-processed
    # still has the files of its previous version.
    op.execute(
        "UPDATE tracks SET playable_version = "
        "(SELECT MAX(version) FROM track_files WHERE track_files.track_id = tracks.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("tracks") as batch:
        batch.drop_column("playable_version")
