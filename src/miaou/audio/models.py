"""Audio wire shapes (msgspec) and the pure rules about who may see and play a track.

Visibility, as SoundCloud has it:

- ``public``: anyone, listed and searchable, once its release time has passed;
- ``unlisted``: anyone holding the secret link (the track id with its ``secret``), never
  listed; also from its release time on;
- ``private``: the owner and the users it is shared with.

The owner always sees their own tracks, released or not. Media (playlists, segments, the
progressive file, waveforms) of anything but a public released track is reached only
through short-lived signed URLs that the API hands to someone the rules let in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

import msgspec

Visibility = Literal["public", "unlisted", "private"]
TrackState = Literal["processing", "ready", "failed"]
VISIBILITIES = ("public", "unlisted", "private")
TITLE_MAX = 200
DESCRIPTION_MAX = 4000
GENRE_MAX = 100
TAG_MAX = 50
TAGS_MAX = 30
_DIGITS = re.compile(r"[0-9]{1,15}")  # ASCII only: str.isdigit() takes "²"


@dataclass(frozen=True)
class TrackAccess:
    """What the rules need to know of a track."""

    owner_id: int
    visibility: str
    secret: str
    release_at: int | None


def is_released(track: TrackAccess, now: int) -> bool:
    return track.release_at is None or track.release_at <= now


def can_see(
    track: TrackAccess, viewer: int | None, now: int, *, secret: str | None, shared: bool
) -> bool:
    """Whether ``viewer`` (None: anonymous) may see and play ``track``.

    ``secret`` is the link key the viewer presented (unlisted tracks); ``shared`` whether
    the track is shared with the viewer (private tracks)."""
    if viewer is not None and viewer == track.owner_id:
        return True
    if track.visibility == "private":
        return shared and is_released(track, now)
    if not is_released(track, now):
        return False
    if track.visibility == "public":
        return True
    # Compared as bytes: compare_digest refuses non-ASCII str, and a link may hold anything.
    return secret is not None and hmac.compare_digest(secret.encode(), track.secret.encode())


def is_listed(track: TrackAccess, now: int) -> bool:
    """Whether the track appears in listings and search for everyone."""
    return track.visibility == "public" and is_released(track, now)


# -- signed media URLs ----------------------------------------------------------------------
def media_signature(key: bytes, track_id: int, version: int, expires_s: int) -> str:
    """The signature of a media token: HMAC-SHA256 over what the token grants."""
    message = f"{track_id}.{version}.{expires_s}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def media_token(key: bytes, track_id: int, version: int, expires_s: int) -> str:
    """``<version>.<expires (Unix s)>.<signature>``: a path segment, so a playlist's
    relative URIs carry it to every segment without rewriting."""
    return f"{version}.{expires_s}.{media_signature(key, track_id, version, expires_s)}"


def check_media_token(key: bytes, track_id: int, token: str, now_s: int) -> int | None:
    """The version a token grants for ``track_id``, or None if it is forged or expired."""
    parts = token.split(".")
    if len(parts) != 3 or not all(_DIGITS.fullmatch(part) for part in parts[:2]):
        return None
    version, expires_s = int(parts[0]), int(parts[1])
    if expires_s < now_s or version > 2**31:
        return None
    expected = media_signature(key, track_id, version, expires_s)
    return version if hmac.compare_digest(expected, parts[2]) else None


# -- wire shapes ----------------------------------------------------------------------------
class TrackCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``payload_json`` part of an upload; tags from the file fill what is not given."""

    title: str | None = None
    description: str | None = None
    genre: str | None = None
    tags: list[str] | None = None
    visibility: Visibility = "public"
    release_at: int | None = None  # Unix ms
    downloadable: bool = False


class TrackUpdate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: str | msgspec.UnsetType = msgspec.UNSET
    artist: str | msgspec.UnsetType | None = msgspec.UNSET
    album: str | msgspec.UnsetType | None = msgspec.UNSET
    genre: str | msgspec.UnsetType | None = msgspec.UNSET
    year: int | msgspec.UnsetType | None = msgspec.UNSET
    track_number: int | msgspec.UnsetType | None = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    tags: list[str] | msgspec.UnsetType = msgspec.UNSET
    visibility: Visibility | msgspec.UnsetType = msgspec.UNSET
    release_at: int | msgspec.UnsetType | None = msgspec.UNSET
    downloadable: bool | msgspec.UnsetType = msgspec.UNSET


class Loudness(msgspec.Struct, kw_only=True):
    """EBU R128 figures; the first three are null for silence (no gated block)."""

    integrated_lufs: float | None
    true_peak_dbtp: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float


class Processing(msgspec.Struct, kw_only=True):
    """The track's processing job as the owner sees it."""

    state: str
    progress: float
    attempts: int
    error: str | None = None


class MediaUrls(msgspec.Struct, kw_only=True):
    """Where to play a track from; signed (and expiring) unless it is public and released."""

    hls: str
    stream: str
    waveform_json: str
    waveform_dat: str
    expires_at: int | None = None  # Unix ms


class TrackOwner(msgspec.Struct, kw_only=True):
    """Who a track is by, as a listing shows it."""

    id: str
    username: str
    display_name: str | None


class Track(msgspec.Struct, kw_only=True):
    id: str
    owner_id: str
    title: str
    artist: str | None
    album: str | None
    genre: str | None
    year: int | None
    track_number: int | None
    description: str
    tags: list[str]
    visibility: str
    release_at: int | None
    downloadable: bool
    version: int
    # The version ``media`` plays: ``version`` once it is processed; until then the
    # previous one (null before the first is processed).
    media_version: int | None
    state: str
    duration_ms: int
    container: str
    codec: str
    sample_rate: int
    channels: int
    lossless: bool
    original_size: int
    bpm: float | None
    loudness: Loudness | None
    plays: int
    created_at: int
    updated_at: int
    owner: TrackOwner | None = None
    cover: dict[str, str] | None = None  # size -> URL
    media: MediaUrls | None = None  # when ready and the viewer may play it
    processing: Processing | None = None  # the owner only
    secret: str | None = None  # the owner only, for unlisted tracks: the link's key
    secret_url: str | None = None  # the owner only, for unlisted tracks
    error: str | None = None  # the owner only, when processing failed


class PlayReport(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A player's report: how many seconds of this track it has played so far."""

    listened_seconds: float
    secret: str | None = None
