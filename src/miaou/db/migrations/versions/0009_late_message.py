"""PostgreSQL: a function that fails a statement whose messages would commit behind a
later one of their channel (``miaou.chat.send_rows_pg``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLSTATE "MLATE", the channel's newest message id in DETAIL: the caller makes ids past
# it and writes again. (A statement cannot stop itself otherwise once its rows are in.)
_CREATE = """
CREATE FUNCTION miaou_late_message(newest bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'MLATE',
        MESSAGE = 'a later message of this channel committed first',
        DETAIL = newest::text;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_CREATE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION miaou_late_message(bigint)")
