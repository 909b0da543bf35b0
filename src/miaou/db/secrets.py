"""Node secrets kept in the database, so that every node of a cluster signs alike.

A secret is made (32 random bytes) the first time any node asks for it; a race between two
nodes asking at once is settled by the primary key, and both then read the winner's.
"""

from __future__ import annotations

import secrets as _random

from sqlalchemy import Column, LargeBinary, String, Table, select
from sqlalchemy.exc import IntegrityError

from miaou.db.engine import Database
from miaou.db.metadata import metadata

node_secrets = Table(
    "node_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)


async def node_secret(db: Database, name: str) -> bytes:
    """The secret called ``name``, made on first use."""
    async with db.read() as conn:
        found = (
            await conn.execute(select(node_secrets.c.value).where(node_secrets.c.name == name))
        ).scalar_one_or_none()
    if found is not None:
        return bytes(found)
    try:
        async with db.write() as conn:
            await conn.execute(
                node_secrets.insert().values(name=name, value=_random.token_bytes(32))
            )
    except IntegrityError:
        pass  # another node made it first: theirs is the one
    async with db.read() as conn:
        value = (
            await conn.execute(select(node_secrets.c.value).where(node_secrets.c.name == name))
        ).scalar_one()
    return bytes(value)
