"""Full-text search over message content, maintained by the database itself.

SQLite: an FTS5 table with external content (``messages`` holds the text, the index holds
only tokens) kept in step by triggers, so every insert, edit and tombstone through any code
path updates it in the same transaction. PostgreSQL: a stored generated ``tsvector`` column
with a GIN index, which the database recomputes whenever ``content`` changes.

A tombstone clears ``content``, so a deleted message leaves no tokens on either engine.

Neither object is in the SQLAlchemy metadata (ordinary queries must not carry the vector):
``migrations/env.py`` leaves them out of autogenerate comparisons. Beware: a later SQLite
*batch* migration of ``messages`` recreates the table and drops its triggers; such a
migration must create them again (``_SQLITE_TRIGGERS``) and ``rebuild`` the index.

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

# The documented external-content pattern: an index entry is removed by replaying the
# 'delete' command with the exact old text, before the new text is indexed.
_SQLITE_TRIGGERS = (
    """
    CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
    END
    """,
    """
    CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END
    """,
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_SQLITE_TABLE)
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)
        # Index the messages written before this migration.
        op.execute("INSERT INTO messages_fts (messages_fts) VALUES ('rebuild')")
        return
    # 'simple': no stemming and no stop words, the same for every language of a guild.
    op.execute(
        "ALTER TABLE messages ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS (to_tsvector('simple', content)) STORED"
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
