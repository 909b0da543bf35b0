"""read_tags(): ID3, Vorbis comments and MP4 atoms written with mutagen are read back,
cleaned; odd or missing tags never raise."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import mutagen
import pytest
from mutagen.flac import FLAC, Picture
from mutagen.id3 import APIC, COMM, ID3, TALB, TCON, TDRC, TIT2, TPE1, TRCK
from mutagen.mp4 import MP4, MP4Cover
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis
from PIL import Image

from miaou.audio.pipeline.tags import DESCRIPTION_MAX, TEXT_MAX, Tags, read_tags

TITLE = "  Night\tDrive \x07 "
DESCRIPTION = "First line.\r\nSecond line."


def png(colour: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(out, "PNG")
    return out.getvalue()


def copy(sample_files: dict[str, Path], name: str, tmp_path: Path) -> Path:
    path = tmp_path / f"tagged_{name}"
    shutil.copy(sample_files[name], path)
    return path


def write_id3(tags: ID3, cover: bytes) -> None:
    tags.add(TIT2(encoding=3, text=[TITLE]))
    tags.add(TPE1(encoding=3, text=["The Cats"]))
    tags.add(TALB(encoding=3, text=["Miaou"]))
    tags.add(TCON(encoding=3, text=["(17)"]))  # an ID3v1 genre number: Rock
    tags.add(TDRC(encoding=3, text=["2019-05-01"]))
    tags.add(TRCK(encoding=3, text=["03/12"]))
    tags.add(COMM(encoding=3, lang="eng", desc="iTunNORM", text=["00000 00000"]))
    tags.add(COMM(encoding=3, lang="eng", desc="", text=[DESCRIPTION]))
    tags.add(APIC(encoding=3, mime="image/png", type=0, desc="other", data=png("blue")))
    tags.add(APIC(encoding=3, mime="image/png", type=3, desc="front", data=cover))


def write_vorbis(audio: mutagen.FileType, cover: bytes) -> None:
    audio["title"] = [TITLE]
    audio["artist"] = ["The Cats"]
    audio["album"] = ["Miaou"]
    audio["genre"] = ["Rock"]
    audio["date"] = ["2019-05-01"]
    audio["tracknumber"] = ["3/12"]
    audio["description"] = [DESCRIPTION]
    picture = Picture()
    picture.type, picture.mime, picture.data = 3, "image/png", cover
    if isinstance(audio, FLAC):
        audio.add_picture(picture)
    else:
        audio["metadata_block_picture"] = [base64.b64encode(picture.write()).decode()]


def tag(path: Path, name: str, cover: bytes) -> None:
    if name in ("mp3", "wav", "aiff"):
        audio = mutagen.File(path)
        if audio.tags is None:
            audio.add_tags()
        write_id3(audio.tags, cover)
        audio.save()
    elif name == "m4a":
        m4a = MP4(path)
        m4a["\xa9nam"] = [TITLE]
        m4a["\xa9ART"] = ["The Cats"]
        m4a["\xa9alb"] = ["Miaou"]
        m4a["\xa9gen"] = ["Rock"]
        m4a["\xa9day"] = ["2019-05-01T00:00:00Z"]
        m4a["trkn"] = [(3, 12)]
        m4a["desc"] = [DESCRIPTION]
        m4a["covr"] = [MP4Cover(cover, imageformat=MP4Cover.FORMAT_PNG)]
        m4a.save()
    else:
        audio = {"flac": FLAC, "ogg_vorbis": OggVorbis, "ogg_opus": OggOpus}[name](path)
        write_vorbis(audio, cover)
        audio.save()


@pytest.mark.parametrize("name", ["mp3", "wav", "aiff", "flac", "ogg_vorbis", "ogg_opus", "m4a"])
def test_tags_read_back(name: str, sample_files: dict[str, Path], tmp_path: Path) -> None:
    path = copy(sample_files, name, tmp_path)
    cover = png("red")
    tag(path, name, cover)
    tags = read_tags(path)
    assert tags == Tags(
        title="Night Drive",  # whitespace collapsed, the BEL removed
        artist="The Cats",
        album="Miaou",
        genre="Rock",
        year=2019,
        track_number=3,
        description="First line.\nSecond line.",
        cover=cover,  # the front cover, not the other picture
    )


def test_untagged_file_gives_empty_tags(sample_files: dict[str, Path]) -> None:
    assert read_tags(sample_files["wav"]) == Tags()


def test_not_audio_gives_empty_tags(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"ID3\x04\x00\x00\x7f\x7f\x7f\x7f" + b"\xff" * 100)  # a lying ID3 header
    assert read_tags(junk) == Tags()
    (tmp_path / "empty.flac").write_bytes(b"")
    assert read_tags(tmp_path / "empty.flac") == Tags()


def test_odd_values_are_dropped_or_capped(sample_files: dict[str, Path], tmp_path: Path) -> None:
    path = copy(sample_files, "flac", tmp_path)
    audio = FLAC(path)
    audio["title"] = ["x" * 1000]
    audio["artist"] = ["   "]
    audio["date"] = ["sometime in the nineties"]
    audio["tracknumber"] = ["A1"]
    audio["description"] = ["d" * 10_000]
    audio["genre"] = ["\u202eesreveR"]  # a right-to-left override
    audio.save()
    tags = read_tags(path)
    assert tags.title == "x" * TEXT_MAX
    assert tags.artist is None
    assert tags.year is None
    assert tags.track_number is None
    assert tags.description == "d" * DESCRIPTION_MAX
    assert tags.genre == "esreveR"
    assert tags.cover is None


def test_year_and_track_forms(sample_files: dict[str, Path], tmp_path: Path) -> None:
    path = copy(sample_files, "ogg_vorbis", tmp_path)
    audio = OggVorbis(path)
    audio["date"] = ["03/02/1987"]
    audio["tracknumber"] = [" 7 "]
    audio.save()
    tags = read_tags(path)
    assert (tags.year, tags.track_number) == (1987, 7)
