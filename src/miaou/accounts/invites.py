"""Registration invites: how people join a node whose ``registration`` is ``invite``.

Administrators make codes with a number of seats and a lifetime; registration spends one
seat atomically (``store.consume_invite``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Row

from miaou.accounts import store
from miaou.accounts.models import MAX_INVITE_SECONDS, Invite, InviteCreate
from miaou.db.engine import Database
from miaou.errors import InvalidInput, NotFound
from miaou.ids import invite_code, now_ms

MAX_LISTED = 200


def invite_view(row: Row[Any]) -> Invite:
    return Invite(
        code=row.code,
        max_uses=row.max_uses,
        uses=row.uses,
        expires_at=row.expires_at,
        created_at=row.created_at,
        created_by=str(row.created_by) if row.created_by is not None else None,
    )


class InviteService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, body: InviteCreate, *, created_by: int | None) -> Invite:
        problems: dict[str, list[str]] = {}
        if body.max_uses is not None and not 1 <= body.max_uses <= 1_000_000:
            problems["max_uses"] = ["must be between 1 and 1000000"]
        if body.expires_in is not None and not 1 <= body.expires_in <= MAX_INVITE_SECONDS:
            problems["expires_in"] = [f"must be between 1 and {MAX_INVITE_SECONDS} seconds"]
        if problems:
            raise InvalidInput("Invalid invite settings.", errors=problems)
        now = now_ms()
        invite = Invite(
            code=invite_code(16),
            max_uses=body.max_uses,
            uses=0,
            expires_at=now + body.expires_in * 1000 if body.expires_in is not None else None,
            created_at=now,
            created_by=str(created_by) if created_by is not None else None,
        )
        async with self.db.write() as conn:
            await store.insert_invite(
                conn,
                code=invite.code,
                created_by=created_by,
                max_uses=invite.max_uses,
                uses=0,
                expires_at=invite.expires_at,
                created_at=now,
            )
        return invite

    async def list(self, *, before: int | None = None, limit: int = 100) -> list[Invite]:
        """Newest first; ``before`` (a created_at) pages back."""
        async with self.db.read() as conn:
            rows = await store.list_invites(
                conn, before=before, limit=max(1, min(limit, MAX_LISTED))
            )
        return [invite_view(r) for r in rows]

    async def revoke(self, code: str) -> None:
        async with self.db.write() as conn:
            if not await store.delete_invite(conn, code):
                raise NotFound("No such invite.", code="unknown_invite")
