"""What an audio file says about itself: title, artist, album, ... and its embedded cover.

Read with mutagen from the three tag families our formats use: ID3 (MP3, and the ID3
chunk of WAV and AIFF), Vorbis comments (FLAC, Ogg Vorbis, Ogg Opus) and MP4 atoms (M4A).
Tags are suggestions that prefill a form, so reading them never fails an upload: odd,
absent or malformed tags give ``None`` fields. Strings are trimmed, stripped of control
characters and capped, because they came from whoever made the file.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mutagen
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Tags

TEXT_MAX = 200
DESCRIPTION_MAX = 4000
COVER_MAX_BYTES = 16 * 1024 * 1024
FRONT_COVER = 3  # picture type in ID3 APIC and FLAC PICTURE
_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
_NUMBER = re.compile(r"\s*(\d{1,4})(?!\d)")
# Direction overrides and isolates: they make a title display as something else.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@dataclass(frozen=True)
class Tags:
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    year: int | None = None
    track_number: int | None = None
    description: str | None = None
    cover: bytes | None = None


@dataclass
class _Raw:
    """Values as found, before cleaning."""

    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    date: str | None = None
    track: str | None = None
    description: str | None = None
    cover: bytes | None = None


def read_tags(path: Path) -> Tags:
    """The tags of the audio file at ``path``; empty ``Tags`` if it has none we can read."""
    try:
        audio = mutagen.File(path)
        tags = audio.tags if audio is not None else None
        if isinstance(tags, ID3):
            raw = _from_id3(tags)
        elif isinstance(tags, MP4Tags):
            raw = _from_mp4(tags)
        elif tags is not None and hasattr(tags, "vendor"):  # a Vorbis comment block
            raw = _from_vorbis(tags, getattr(audio, "pictures", []))
        else:
            return Tags()
    except Exception:  # mutagen raises anything at all on a malformed file
        return Tags()
    return Tags(
        title=_text(raw.title),
        artist=_text(raw.artist),
        album=_text(raw.album),
        genre=_text(raw.genre),
        year=_year(raw.date),
        track_number=_number(raw.track),
        description=_text(raw.description, DESCRIPTION_MAX, multiline=True),
        cover=raw.cover if raw.cover and len(raw.cover) <= COVER_MAX_BYTES else None,
    )


def _from_id3(tags: Any) -> _Raw:  # mutagen is unannotated: Any is the truth
    def text(frame_id: str) -> str | None:
        return _first(str(t) for frame in tags.getall(frame_id) for t in frame.text)

    genres = [g for frame in tags.getall("TCON") for g in frame.genres]
    comments = [c for c in tags.getall("COMM") if not c.desc.startswith("iTun")]
    comments.sort(key=lambda c: c.desc != "")  # the plain comment first
    pictures = sorted(tags.getall("APIC"), key=lambda p: p.type != FRONT_COVER)
    return _Raw(
        title=text("TIT2"),
        artist=text("TPE1"),
        album=text("TALB"),
        genre=_first(genres),
        date=text("TDRC") or text("TYER"),
        track=text("TRCK"),
        description=_first(str(t) for c in comments for t in c.text),
        cover=bytes(pictures[0].data) if pictures else None,
    )


def _from_vorbis(tags: Any, flac_pictures: list[Picture]) -> _Raw:
    def text(*keys: str) -> str | None:
        return _first(v for key in keys for v in (tags.get(key) or []))

    pictures = list(flac_pictures)
    for encoded in tags.get("metadata_block_picture") or []:
        try:
            pictures.append(Picture(base64.b64decode(encoded)))  # type: ignore[no-untyped-call]
        except (binascii.Error, mutagen.MutagenError, ValueError):
            continue
    pictures.sort(key=lambda p: p.type != FRONT_COVER)
    cover = bytes(pictures[0].data) if pictures else None
    if cover is None and tags.get("coverart"):  # the pre-2009 way: bare base64 image
        try:
            cover = base64.b64decode(tags.get("coverart")[0])
        except (binascii.Error, ValueError):
            cover = None
    return _Raw(
        title=text("title"),
        artist=text("artist", "albumartist"),
        album=text("album"),
        genre=text("genre"),
        date=text("date", "year", "originaldate"),
        track=text("tracknumber", "track"),
        description=text("description", "comment"),
        cover=cover,
    )


def _from_mp4(tags: Any) -> _Raw:
    def text(*keys: str) -> str | None:
        return _first(str(v) for key in keys for v in (tags.get(key) or []))

    track = tags.get("trkn") or []
    covers = tags.get("covr") or []
    return _Raw(
        title=text("\xa9nam"),
        artist=text("\xa9ART", "aART"),
        album=text("\xa9alb"),
        genre=text("\xa9gen"),
        date=text("\xa9day"),
        track=str(track[0][0]) if track and track[0] else None,
        description=text("desc", "ldes", "\xa9cmt"),
        cover=bytes(covers[0]) if covers else None,
    )


def _first(values: Iterable[str]) -> str | None:
    return next((v for v in values if v and v.strip()), None)


def _text(value: str | None, limit: int = TEXT_MAX, *, multiline: bool = False) -> str | None:
    if value is None:
        return None
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not multiline:
        value = " ".join(value.split())
    kept = "".join(
        c
        for c in value
        if c in "\n\t" or (unicodedata.category(c) not in ("Cc", "Cs") and c not in _BIDI)
    )
    return kept.strip()[:limit].rstrip() or None


def _year(value: str | None) -> int | None:
    found = _YEAR.search(value or "")
    return int(found.group(1)) if found and int(found.group(1)) >= 1000 else None


def _number(value: str | None) -> int | None:
    found = _NUMBER.match(value or "")
    return int(found.group(1)) if found and int(found.group(1)) > 0 else None
