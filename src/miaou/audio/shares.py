"""Who a private track is shared with: the owner's list of users who may see and play it."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import delete, insert, select

from miaou.audio.tables import track_shares
from miaou.audio.track_store import owned_track
from miaou.db.engine import Database
from miaou.db.metadata import users
from miaou.errors import InvalidInput, NotFound

SHARES_MAX = 100


class TrackShares:
    def __init__(self, db: Database, clock: Callable[[], int]) -> None:
        self.db = db
        self.clock = clock

    async def add(self, owner_id: int, track_id: int, user_id: int) -> None:
        async with self.db.write() as conn:
            await owned_track(conn, track_id, owner_id)
            user = await conn.execute(select(users.c.id).where(users.c.id == user_id))
            if user.first() is None:
                raise NotFound("No such user.", code="unknown_user")
            count = await conn.execute(
                select(track_shares.c.user_id).where(track_shares.c.track_id == track_id)
            )
            shared = set(count.scalars())
            if user_id in shared:
                return
            if len(shared) >= SHARES_MAX:
                raise InvalidInput(
                    f"A track is shared with at most {SHARES_MAX} people.",
                    errors={"user_id": [f"at most {SHARES_MAX} people"]},
                )
            await conn.execute(
                insert(track_shares).values(
                    track_id=track_id, user_id=user_id, created_at=self.clock()
                )
            )

    async def remove(self, owner_id: int, track_id: int, user_id: int) -> None:
        async with self.db.write() as conn:
            await owned_track(conn, track_id, owner_id)
            await conn.execute(
                delete(track_shares).where(
                    track_shares.c.track_id == track_id, track_shares.c.user_id == user_id
                )
            )

    async def user_ids(self, owner_id: int, track_id: int) -> list[str]:
        async with self.db.read() as conn:
            await owned_track(conn, track_id, owner_id)
            rows = await conn.execute(
                select(track_shares.c.user_id)
                .where(track_shares.c.track_id == track_id)
                .order_by(track_shares.c.user_id)
            )
            return [str(user_id) for user_id in rows.scalars()]
