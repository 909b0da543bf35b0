"""Alembic environment: always run from ``miaou.db.migrate`` with a live connection."""

from __future__ import annotations

from alembic import context

from miaou.db.schema import metadata


def include_object(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """Full-text search objects (0003) are kept out of the metadata on purpose: the FTS5
    tables on SQLite, the tsvector column and its index on PostgreSQL."""
    if type_ == "table":
        return not (name or "").startswith("messages_fts")
    return name not in ("search_vector", "ix_messages_search_vector")


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
