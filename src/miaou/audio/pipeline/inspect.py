"""Is an uploaded file audio we accept, and intact? What is it?

Refusals raise :class:`~miaou.errors.InvalidInput` with a stable code:

- ``empty_file``: zero bytes;
- ``unsupported_audio``: not audio, or not MP3, WAV/AIFF (PCM), FLAC, Ogg Vorbis/Opus or
  M4A (AAC/ALAC), as found from the content (see ``source``);
- ``invalid_audio``: damaged: a decode error, no samples at all, or clearly shorter than
  its header says;
- ``audio_too_long``: longer than ``max_duration``.

Intact is checked by decoding the whole file once, which costs a fraction of a second a
minute. The header's own claim is read with mutagen, not FFmpeg: FFmpeg quietly clamps a
WAV or AIFF whose header claims more data than the file holds (a cut upload, or a crafted
"hours of audio" header) to what is there, which would hide the damage. An Ogg file has
no length in its header: a cut one is told by its last page, which lacks the end-of-stream
flag every encoder sets.

A WAV written to a pipe has no data size at all (0 or 0xFFFFFFFF, "to the end"): it is
not held to one.

The length limit is checked on the declared duration before decoding (a three-hour file
is refused without decoding three hours) and again while decoding, which stops as soon as
the limit is passed (a header may understate).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mutagen
from mutagen.aiff import AIFF
from mutagen.flac import FLAC
from mutagen.mp3 import MP3, MPEGInfo
from mutagen.mp4 import MP4
from mutagen.ogg import OggPage
from mutagen.wave import WAVE

from miaou.audio.pipeline.source import Source, decode, invalid, open_audio
from miaou.errors import InvalidInput

# How much shorter than its header a file may decode before it counts as cut: priming and
# padding samples of lossy codecs come to a few tens of milliseconds.
SHORTFALL_SECONDS = 0.5
SHORTFALL_FRACTION = 0.02
# Frames end where they end: the limit is passed when exceeded by more than this.
LIMIT_SLACK_SECONDS = 0.05
_WAV_SCAN = 64 * 1024  # the chunks before "data" (fmt, LIST, bext...) fit in this
_HEADER_READERS: dict[str, type[mutagen.FileType]] = {
    "wav": WAVE,
    "aiff": AIFF,
    "flac": FLAC,
    "mp3": MP3,
    "m4a": MP4,
}


@dataclass(frozen=True)
class SourceInfo:
    """What an accepted upload is. ``duration`` is measured by decoding, in seconds."""

    container: str  # mp3, wav, flac, aiff, ogg, m4a
    codec: str  # FFmpeg's codec name: mp3, pcm_s16le, flac, vorbis, opus, aac, alac, ...
    duration: float
    sample_rate: int
    channels: int
    bit_rate: int | None
    lossless: bool


def inspect(path: Path, *, max_duration: float) -> SourceInfo:
    """Validate the audio file at ``path`` and describe it; raises ``InvalidInput``."""
    if path.stat().st_size == 0:
        raise invalid("The file is empty.", "empty_file")
    with open_audio(path) as source:
        if source.declared is not None and source.declared > max_duration + LIMIT_SLACK_SECONDS:
            raise _too_long(max_duration)
        duration = _decoded_duration(source, max_duration)
        bit_rate = source.stream.codec_context.bit_rate or source.container.bit_rate or None
    if duration <= 0:
        raise invalid("The file contains no audio samples.", "invalid_audio")
    claimed = _header_duration(path, source.kind)
    if claimed is not None and claimed - duration > max(
        SHORTFALL_SECONDS, SHORTFALL_FRACTION * claimed
    ):
        raise invalid(
            f"The audio is cut short: {duration:.1f} s decoded of {claimed:.1f} s declared.",
            "invalid_audio",
        )
    if source.kind == "ogg" and not _ogg_complete(path):
        raise invalid("The Ogg stream is cut short (no end-of-stream page).", "invalid_audio")
    return SourceInfo(
        container=source.kind,
        codec=source.codec,
        duration=duration,
        sample_rate=source.sample_rate,
        channels=source.channels,
        bit_rate=bit_rate,
        lossless=source.lossless,
    )


def _decoded_duration(source: Source, max_duration: float) -> float:
    limit = round((max_duration + LIMIT_SLACK_SECONDS) * source.sample_rate)
    samples = 0
    for frame in decode(source):
        samples += frame.samples
        if samples > limit:
            raise _too_long(max_duration)
    return samples / source.sample_rate


def _too_long(max_duration: float) -> InvalidInput:
    return invalid(
        f"The audio is longer than the limit of {_clock(max_duration)}.", "audio_too_long"
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _header_duration(path: Path, kind: str) -> float | None:
    """The duration the file's header claims, where it states one exactly; else None."""
    reader = _HEADER_READERS.get(kind)
    if reader is None or (kind == "wav" and _streamed_wav(path)):
        return None
    try:
        info = reader(path).info
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        # FFmpeg decoded it; a header mutagen cannot parse is no evidence of damage.
        return None
    if isinstance(info, MPEGInfo) and info.sketchy:
        return None  # no Xing/VBRI header: the length is a guess from the first frame
    length = getattr(info, "length", None)
    return float(length) if isinstance(length, int | float) and length > 0 else None


def _streamed_wav(path: Path) -> bool:
    """A WAV written to a pipe (``ffmpeg ... -f wav -``) could not go back to fill in its
    data size: it says 0 or 0xFFFFFFFF, meaning "until the end of the file"."""
    with path.open("rb") as file:
        head = file.read(_WAV_SCAN)
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = (
            head[offset : offset + 4],
            int.from_bytes(head[offset + 4 : offset + 8], "little"),
        )
        if chunk == b"data":
            return size in (0, 0xFFFFFFFF)
        offset += 8 + size + (size & 1)
    return False


def _ogg_complete(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            # mutagen is unannotated
            first = OggPage(file)  # type: ignore[no-untyped-call]
            last = OggPage.find_last(file, first.serial)  # type: ignore[no-untyped-call]
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        return False
    return last is not None and bool(last.last)
