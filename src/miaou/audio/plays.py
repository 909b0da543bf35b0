"""Play counting, and the daily figures creator statistics are built on.

A player reports how long it has played a track (``POST .../plays``, repeated as it goes).
A play counts once per listener per track per :data:`WINDOW_MS`, once the listener has
heard :data:`MIN_SECONDS`, as SoundCloud counts. A listener is a user id, or for anonymous
callers a keyed hash of their address: the address itself is never stored, and without the
node's secret the hash cannot be matched against a list of addresses.

A counted play writes, in one transaction: the listener's window (``track_listens``), the
track's total, and the day's plays and distinct listeners. The window is claimed by a
conditional upsert (insert, or move ``counted_at`` only if the last one is old enough, and
say whether it did), so two reports racing on two nodes count once: on PostgreSQL the
second waits on the first's row and then finds the window taken; SQLite's writers take
turns. Reports that cannot count (too short, or inside the window) write nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from datetime import date, timedelta
from typing import Annotated, Any
from weakref import WeakKeyDictionary

import msgspec
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy import BigInteger, bindparam, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.audio import playback
from miaou.audio.models import PlayReport, TrackAccess, can_see
from miaou.audio.tables import (
    track_day_listeners,
    track_listens,
    track_play_days,
    track_shares,
    tracks,
)
from miaou.audio.track_store import unknown_track
from miaou.db.engine import Database
from miaou.db.secrets import node_secret
from miaou.errors import Conflict, Forbidden, InvalidInput
from miaou.http.auth import client_ip, node_of, optional_user, principal
from miaou.http.params import AnyRequest, Who, path_id

MIN_SECONDS = 30.0
WINDOW_MS = 30 * 60 * 1000
# A report may run past the track's length by this much (a player's clock, a seek).
SLACK_SECONDS = 60.0
DAY_MS = 86_400_000
EPOCH = date(1970, 1, 1)
STATS_DAYS_MAX = 366
LISTENER_KEY_NAME = "listeners"


class PlayResult(msgspec.Struct, kw_only=True):
    counted: bool
    plays: int  # the track's total, this play included


class DayPlays(msgspec.Struct, kw_only=True):
    day: str  # ISO date, UTC
    plays: int
    listeners: int  # distinct listeners that day


class DailyPlays(msgspec.Struct, kw_only=True):
    track_id: str
    first: str = msgspec.field(name="from")
    last: str = msgspec.field(name="to")
    days: list[DayPlays]  # every day of the range, in order, days without plays as 0


# -- the pure rules -------------------------------------------------------------------------
def listened_is_valid(listened_seconds: float, duration_ms: int) -> bool:
    """From 0 to the track's length plus slack; anything else is a broken or lying player."""
    limit = duration_ms / 1000 + SLACK_SECONDS
    return math.isfinite(listened_seconds) and 0 <= listened_seconds <= limit


def play_counts(listened_seconds: float, last_counted_ms: int | None, now_ms: int) -> bool:
    """Whether this report counts a play: heard long enough, and this listener's last
    counted play of the track is at least a window ago."""
    if not listened_seconds >= MIN_SECONDS:
        return False
    return last_counted_ms is None or now_ms - last_counted_ms >= WINDOW_MS


def day_of(ms: int) -> int:
    """Days since 1970-01-01 (UTC) of a Unix ms time: the key of the day tables."""
    return ms // DAY_MS


def stats_range(first: str | None, last: str | None, today: date) -> tuple[date, date]:
    """The days ``from``/``to`` (ISO dates) name: by default the 30 days up to today; at
    most :data:`STATS_DAYS_MAX` days, so one answer stays small."""
    problems: dict[str, list[str]] = {}

    def parse(text: str | None, name: str, default: date) -> date:
        try:
            return default if text is None else date.fromisoformat(text)
        except ValueError:
            problems[name] = ["must be a date (YYYY-MM-DD)"]
            return default

    end = parse(last, "to", today)
    start = parse(first, "from", end - timedelta(days=29))
    if not problems and not 0 <= (end - start).days < STATS_DAYS_MAX:
        problems["from"] = [f"must be 'to' or up to {STATS_DAYS_MAX - 1} days before it"]
    if problems:
        raise InvalidInput(errors=problems)
    return start, end


def anonymous_listener(key: bytes, ip: str) -> str:
    """``a:`` and a keyed hash of the address (user ids are digits: they never collide)."""
    return "a:" + hmac.new(key, ip.encode(), hashlib.sha256).hexdigest()[:40]


# -- statements, built once (miaou.db.keyed says why) -------------------------------------------
_SHARED = exists().where(
    track_shares.c.track_id == tracks.c.id,
    track_shares.c.user_id == bindparam("viewer", type_=BigInteger),
)
_LAST = (
    select(track_listens.c.counted_at)
    .where(track_listens.c.track_id == tracks.c.id, track_listens.c.listener == bindparam("who"))
    .scalar_subquery()
)
TRACK = select(
    tracks.c.owner_id, tracks.c.visibility, tracks.c.secret, tracks.c.release_at,
    tracks.c.playable_version, tracks.c.duration_ms, tracks.c.plays,
    _SHARED.label("shared"), _LAST.label("last_counted"),
).where(tracks.c.id == bindparam("track_id"))  # fmt: skip


def _statements(dialect: Any) -> dict[str, Any]:
    claim = dialect.insert(track_listens).values(
        track_id=bindparam("track_id"), listener=bindparam("who"), counted_at=bindparam("now")
    )
    claim = claim.on_conflict_do_update(
        index_elements=[track_listens.c.track_id, track_listens.c.listener],
        set_={"counted_at": claim.excluded.counted_at},
        where=track_listens.c.counted_at <= bindparam("cutoff"),
    ).returning(track_listens.c.counted_at)
    first_today = (
        dialect.insert(track_day_listeners)
        .values(track_id=bindparam("track_id"), day=bindparam("day"), listener=bindparam("who"))
        .on_conflict_do_nothing()
        .returning(track_day_listeners.c.listener)
    )
    day = dialect.insert(track_play_days).values(
        track_id=bindparam("track_id"), day=bindparam("day"), plays=1,
        listeners=bindparam("new"),
    )  # fmt: skip
    day = day.on_conflict_do_update(
        index_elements=[track_play_days.c.track_id, track_play_days.c.day],
        set_={
            "plays": track_play_days.c.plays + 1,
            "listeners": track_play_days.c.listeners + day.excluded.listeners,
        },
    )
    return {"claim": claim, "first_today": first_today, "day": day}


_WRITES = {"postgresql": _statements(postgresql), "sqlite": _statements(sqlite)}
_DAYS = (
    select(track_play_days.c.day, track_play_days.c.plays, track_play_days.c.listeners)
    .where(
        track_play_days.c.track_id == bindparam("track_id"),
        track_play_days.c.day.between(bindparam("first"), bindparam("last")),
    )
    .order_by(track_play_days.c.day)
)
_BUMP = tracks.update().where(tracks.c.id == bindparam("track_id")).values(
    plays=tracks.c.plays + 1).returning(tracks.c.plays)  # fmt: skip


def visible(row: Any, viewer: int | None, now: int, secret: str | None) -> bool:
    access = TrackAccess(row.owner_id, row.visibility, row.secret, row.release_at)
    return can_see(access, viewer, now, secret=secret, shared=bool(row.shared))


# -- use case -------------------------------------------------------------------------------
_listener_keys: WeakKeyDictionary[Database, bytes] = WeakKeyDictionary()


async def listener_key(db: Database) -> bytes:
    """The key of anonymous listeners' hashes, read once per database handle."""
    key = _listener_keys.get(db)
    if key is None:
        key = _listener_keys[db] = await node_secret(db, LISTENER_KEY_NAME)
    return key


async def report_play(
    db: Database, track_id: int, viewer: int | None, ip: str, report: PlayReport
) -> PlayResult:
    """Count a play if the report earns one; 404 for tracks the caller may not play."""
    who = str(viewer) if viewer is not None else anonymous_listener(await listener_key(db), ip)
    now = playback.clock()  # the wing's one clock, which tests move
    async with db.read() as conn:
        params = {"track_id": track_id, "viewer": viewer, "who": who}
        row = (await conn.execute(TRACK, params)).first()
    # compare_digest refuses non-ASCII text (TypeError): such a secret is simply wrong.
    secret = report.secret if report.secret is None or report.secret.isascii() else ""
    if row is None or not visible(row, viewer, now, secret):
        raise unknown_track()
    if row.playable_version is None:
        raise Conflict("The track is not playable yet.", code="track_not_ready")
    if not listened_is_valid(report.listened_seconds, row.duration_ms):
        limit = row.duration_ms // 1000 + int(SLACK_SECONDS)
        raise InvalidInput(errors={"listened_seconds": [f"must be from 0 to {limit}"]})
    if not play_counts(report.listened_seconds, row.last_counted, now):
        return PlayResult(counted=False, plays=row.plays)
    return await _count(db, track_id, who, now, row.plays)


async def _count(db: Database, track_id: int, who: str, now: int, plays: int) -> PlayResult:
    writes = _WRITES[db.dialect]
    params = {"track_id": track_id, "who": who, "now": now, "cutoff": now - WINDOW_MS,
              "day": day_of(now)}  # fmt: skip
    try:
        async with db.write() as conn:
            if (await conn.execute(writes["claim"], params)).first() is None:
                return PlayResult(counted=False, plays=plays)  # another report took it
            total = (await conn.execute(_BUMP, params)).scalar_one_or_none()
            if total is None:
                raise unknown_track()  # deleted meanwhile: the claim is rolled back
            new = (await conn.execute(writes["first_today"], params)).first() is not None
            await conn.execute(writes["day"], {**params, "new": int(new)})
    except IntegrityError:  # the track was deleted between the read and the claim
        raise unknown_track() from None
    return PlayResult(counted=True, plays=int(total))


async def daily_stats(
    conn: AsyncConnection, track_id: int, first_day: date, last_day: date
) -> list[DayPlays]:
    """Plays and distinct listeners of each day from ``first_day`` to ``last_day``."""
    first, last = (first_day - EPOCH).days, (last_day - EPOCH).days
    params = {"track_id": track_id, "first": first, "last": last}
    found = {row.day: row for row in await conn.execute(_DAYS, params)}
    return [
        DayPlays(
            day=(EPOCH + timedelta(days=n)).isoformat(),
            plays=found[n].plays if n in found else 0,
            listeners=found[n].listeners if n in found else 0,
        )
        for n in range(first, last + 1)
    ]


class PlaysController(Controller):
    path = "/api/v1/tracks/{track_id:str}/plays"
    tags = ["plays"]

    @post("/", status_code=HTTP_200_OK, summary="Report listening progress; counts plays")
    async def report(
        self, request: AnyRequest, track_id: FromPath[str], data: JSONBody[PlayReport]
    ) -> PlayResult:
        """Anonymous callers count by address; a bearer token makes the user the listener
        (and an invalid one is 401, never a silent fall back to anonymous)."""
        viewer = await optional_user(request)
        return await report_play(
            node_of(request).db, path_id(track_id, "track"), viewer, client_ip(request), data
        )

    @get("/daily", dependencies={"who": principal}, summary="Plays per day (the owner)")
    async def daily(
        self, request: AnyRequest, who: Who, track_id: FromPath[str],
        first: Annotated[str | None, QueryParameter(name="from")] = None,
        last: Annotated[str | None, QueryParameter(name="to")] = None,
    ) -> DailyPlays:  # fmt: skip
        """``from``/``to``: ISO dates (UTC), at most 366 days; 403 for those who may see
        the track but do not own it, 404 for everyone else."""
        db, track = node_of(request).db, path_id(track_id, "track")
        start, end = stats_range(first, last, EPOCH + timedelta(days=day_of(playback.clock())))
        async with db.read() as conn:
            params = {"track_id": track, "viewer": who.user_id, "who": ""}
            row = (await conn.execute(TRACK, params)).first()
            if row is None or not visible(row, who.user_id, playback.clock(), None):
                raise unknown_track()
            if row.owner_id != who.user_id:
                raise Forbidden("Only the track's owner sees its statistics.")
            days = await daily_stats(conn, track, start, end)
        return DailyPlays(track_id=str(track), first=start.isoformat(), last=end.isoformat(),
                          days=days)  # fmt: skip


routes = [PlaysController]
