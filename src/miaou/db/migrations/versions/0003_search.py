"""Full-text search over message content, maintained by the database itself.

SQLite: an FTS5 table with external content (``messages`` holds the text, the index holds
only tokens) kept in step by triggers, so every insert, edit and tombstone through any code
path updates it in the same transaction. PostgreSQL: a stored generated ``tsvector`` column
with a GIN index, which the database recomputes whenever ``content`` changes.

A deleted message (``deleted_at`` set; its tombstone also clears ``content``) is indexed as
empty text on both engines, so it can never match.

Neither object is in the SQLAlchemy metadata (ordinary queries must not carry the vector):
``migrations/env.py`` leaves them out of autogenerate comparisons. Beware: a later SQLite
*batch* migration of ``messages`` recreates the table and drops its triggers; such a
migration must create them again (``_SQLITE_TRIGGERS``) and re-index as ``upgrade`` does.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# remove_diacritics 2: "café" and "cafe" are one token, including for combined forms.
_SQLITE_TABLE = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content,
    content='messages',
    content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
)
"""

# What is indexed: the content of a live message, nothing of a deleted one, even if a
# tombstone ever kept its text. Search relies on this and does not re-check deleted_at.
# The documented external-content pattern: an index entry is removed by replaying the
# 'delete' command with the exact text that was indexed, before the new text is indexed.
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content)
        VALUES (new.id, CASE WHEN new.deleted_at IS NULL THEN new.content ELSE '' END);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, CASE WHEN old.deleted_at IS NULL THEN old.content ELSE '' END);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, deleted_at ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, CASE WHEN old.deleted_at IS NULL THEN old.content ELSE '' END);
        INSERT INTO messages_fts (rowid, content)
        VALUES (new.id, CASE WHEN new.deleted_at IS NULL THEN new.content ELSE '' END);
    END
    """,
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_TABLE)
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        # Index the messages written before this migration. Not FTS5's 'rebuild', which
        # would index deleted messages' text too.
        op.execute(
            "INSERT INTO messages_fts (rowid, content) "
            "SELECT id, content FROM messages WHERE deleted_at IS NULL"
        )
        return
    # 'simple': no stemming and no stop words, the same for every language of a guild.
    op.execute(
        "ALTER TABLE messages ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
        "(to_tsvector('simple', CASE WHEN deleted_at IS NULL THEN content ELSE '' END)) STORED"
    )
    op.execute("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("messages_fts_insert", "messages_fts_delete", "messages_fts_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
        return
    op.execute("DROP INDEX IF EXISTS ix_messages_search_vector")
    op.execute("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector")
