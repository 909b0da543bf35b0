"""Audio tables (SQLAlchemy Core), on the one shared ``MetaData``.

A track keeps its id, counts and (later) comments across versions: a new upload replaces
the audio by bumping ``version``, and every file made from one version is a row of
``track_files`` naming a blob of the content-addressed store. Ids are snowflakes, times Unix
milliseconds, as everywhere.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    false,
)

from miaou.db.metadata import metadata

HASH = 64  # sha256 hex


def _track_key() -> Column[int]:
    """The first part of the key of a table about tracks; rows go with their track."""
    return Column(
        "track_id",
        BigInteger,
        ForeignKey("tracks.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )


tracks = Table(
    "tracks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("owner_id", BigInteger, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("title", String(200), nullable=False),
    Column("artist", String(200), nullable=True),
    Column("album", String(200), nullable=True),
    Column("genre", String(100), nullable=True),
    Column("year", Integer, nullable=True),
    Column("track_number", Integer, nullable=True),
    Column("description", Text, nullable=False, server_default=""),
    # Space-separated lower-case tags, each also a word the search matches.
    Column("tags", Text, nullable=False, server_default=""),
    Column("visibility", String(16), nullable=False),  # public | unlisted | private
    # The unlisted link's key: knowing it is the permission.
    Column("secret", String(32), nullable=False),
    Column("release_at", BigInteger, nullable=True),
    Column("downloadable", Boolean, nullable=False, server_default=false()),
    Column("version", Integer, nullable=False, server_default="1"),
    # The version whose files play (NULL until the first one is processed). While a new
    # upload is processed, listeners keep hearing the previous version.
    Column("playable_version", Integer, nullable=True),
    Column("state", String(16), nullable=False),  # processing | ready | failed
    Column("error", Text, nullable=True),
    Column("job_id", BigInteger, nullable=True),
    # The original upload of the current version, kept for lossless downloads.
    Column("original_sha256", String(HASH), nullable=False),
    Column("original_size", BigInteger, nullable=False),
    Column("original_filename", String(255), nullable=False),
    Column("container", String(16), nullable=False),
    Column("codec", String(32), nullable=False),
    Column("sample_rate", Integer, nullable=False),
    Column("channels", Integer, nullable=False),
    Column("lossless", Boolean, nullable=False),
    Column("duration_ms", BigInteger, nullable=False),
    # Filled in by processing.
    Column("loudness_lufs", Float, nullable=True),
    Column("true_peak_dbtp", Float, nullable=True),
    Column("replaygain_db", Float, nullable=True),
    Column("replaygain_peak", Float, nullable=True),
    Column("bpm", Float, nullable=True),
    Column("cover_80", String(HASH), nullable=True),
    Column("cover_300", String(HASH), nullable=True),
    Column("cover_1000", String(HASH), nullable=True),
    Column("plays", BigInteger, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "owner_id", "id"),
    # Duplicate uploads of the same audio by the same user are found by this.
    Index(None, "owner_id", "original_sha256"),
    Index(None, "visibility", "id"),
)

# Who may play a private track besides its owner.
track_shares = Table(
    "track_shares",
    metadata,
    _track_key(),
    Column(
        "user_id",
        BigInteger,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("created_at", BigInteger, nullable=False),
)

# Every file made from one version of a track: playlists, segments, progressive file,
# waveforms, each a blob.
track_files = Table(
    "track_files",
    metadata,
    _track_key(),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(128), primary_key=True),
    Column("sha256", String(HASH), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(64), nullable=False),
    Index(None, "sha256"),
)

# Plays: one per listener per track per window; the day tables feed creator statistics.
track_listens = Table(
    "track_listens",
    metadata,
    _track_key(),
    # A user id, or a hash of an anonymous listener's address.
    Column("listener", String(64), primary_key=True),
    Column("counted_at", BigInteger, nullable=False),
)

track_play_days = Table(
    "track_play_days",
    metadata,
    _track_key(),
    Column("day", Integer, primary_key=True, autoincrement=False),  # days since 1970-01-01
    Column("plays", BigInteger, nullable=False),
    Column("listeners", BigInteger, nullable=False),
)

# Who listened on a day: what makes ``listeners`` a count of distinct people.
track_day_listeners = Table(
    "track_day_listeners",
    metadata,
    _track_key(),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("listener", String(64), primary_key=True),
)
