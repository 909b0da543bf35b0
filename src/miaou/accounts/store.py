"""Accounts storage: queries over ``users``, ``sessions`` and ``registration_invites``.

Functions take a connection inside a transaction opened by the service; none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.db.metadata import registration_invites, sessions, users
from miaou.errors import Conflict


async def insert_user(conn: AsyncConnection, **values: Any) -> None:
    try:
        async with conn.begin_nested():
            await conn.execute(users.insert().values(**values))
    except IntegrityError:
        # The unique index on username_key decides races between two registrations.
        raise Conflict(
            "This username is taken.", code="username_taken", errors={"username": ["is taken"]}
        ) from None


async def user_by_id(conn: AsyncConnection, user_id: int, *, lock: bool = False) -> Row[Any] | None:
    """``lock`` for read-modify-write: a row lock on PostgreSQL (SQLite's write transactions
    already hold the database write lock from BEGIN IMMEDIATE)."""
    query = select(users).where(users.c.id == user_id)
    return (await conn.execute(query.with_for_update() if lock else query)).first()


async def user_by_key(conn: AsyncConnection, key: str) -> Row[Any] | None:
    return (await conn.execute(select(users).where(users.c.username_key == key))).first()


async def list_users(
    conn: AsyncConnection, *, after: int = 0, limit: int = 100
) -> Sequence[Row[Any]]:
    query = select(users).where(users.c.id > after).order_by(users.c.id).limit(limit)
    return (await conn.execute(query)).all()


async def update_user(conn: AsyncConnection, user_id: int, **values: Any) -> None:
    await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def insert_session(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(sessions.insert().values(**values))


async def session_with_user(conn: AsyncConnection, token_hash: bytes) -> Row[Any] | None:
    """The session for a token hash joined with its user, in one query (every request)."""
    query = (
        select(
            sessions.c.id.label("session_id"),
            sessions.c.last_used_at,
            users,
        )
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == token_hash)
    )
    return (await conn.execute(query)).first()


async def touch_session(conn: AsyncConnection, session_id: int, now: int) -> None:
    await conn.execute(update(sessions).where(sessions.c.id == session_id).values(last_used_at=now))


async def list_sessions(conn: AsyncConnection, user_id: int) -> Sequence[Row[Any]]:
    query = (
        select(sessions)
        .where(sessions.c.user_id == user_id)
        .order_by(sessions.c.last_used_at.desc(), sessions.c.id.desc())
    )
    return (await conn.execute(query)).all()


async def get_session(conn: AsyncConnection, user_id: int, session_id: int) -> Row[Any] | None:
    query = select(sessions).where(and_(sessions.c.id == session_id, sessions.c.user_id == user_id))
    return (await conn.execute(query)).first()


async def delete_session(conn: AsyncConnection, user_id: int, session_id: int) -> bool:
    result = await conn.execute(
        delete(sessions).where(and_(sessions.c.id == session_id, sessions.c.user_id == user_id))
    )
    return bool(result.rowcount)


async def delete_other_sessions(conn: AsyncConnection, user_id: int, keep: int | None) -> int:
    condition = sessions.c.user_id == user_id
    if keep is not None:
        condition = and_(condition, sessions.c.id != keep)
    return int((await conn.execute(delete(sessions).where(condition))).rowcount)


async def prune_sessions(
    conn: AsyncConnection, user_id: int, *, keep_newest: int, idle_before: int
) -> int:
    """Drop idle sessions and all but the ``keep_newest`` most recently used ones."""
    newest = (
        select(sessions.c.id)
        .where(sessions.c.user_id == user_id)
        .order_by(sessions.c.last_used_at.desc(), sessions.c.id.desc())
        .limit(keep_newest)
        .scalar_subquery()
    )
    result = await conn.execute(
        delete(sessions).where(
            and_(
                sessions.c.user_id == user_id,
                or_(sessions.c.last_used_at < idle_before, sessions.c.id.not_in(newest)),
            )
        )
    )
    return int(result.rowcount)


async def insert_invite(conn: AsyncConnection, **values: Any) -> None:
    await conn.execute(registration_invites.insert().values(**values))


async def list_invites(
    conn: AsyncConnection, *, before: int | None, limit: int
) -> Sequence[Row[Any]]:
    query = select(registration_invites)
    if before is not None:
        query = query.where(registration_invites.c.created_at < before)
    query = query.order_by(
        registration_invites.c.created_at.desc(), registration_invites.c.code
    ).limit(limit)
    return (await conn.execute(query)).all()


async def delete_invite(conn: AsyncConnection, code: str) -> bool:
    result = await conn.execute(
        delete(registration_invites).where(registration_invites.c.code == code)
    )
    return bool(result.rowcount)


async def consume_invite(conn: AsyncConnection, code: str, now: int) -> bool:
    """Use one seat of an invite; False if it is unknown, expired or used up.

    A single conditional UPDATE, so two registrations cannot both take the last seat.
    """
    inv = registration_invites.c
    result = await conn.execute(
        update(registration_invites)
        .where(
            and_(
                inv.code == code,
                or_(inv.expires_at.is_(None), inv.expires_at > now),
                or_(inv.max_uses.is_(None), inv.uses < inv.max_uses),
            )
        )
        .values(uses=inv.uses + 1)
    )
    return bool(result.rowcount)


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())
