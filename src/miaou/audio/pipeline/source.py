"""Opening an uploaded audio file with PyAV: its format from its bytes, FFmpeg's errors ours.

The file name is never trusted. FFmpeg's prober gives weight to a name's extension (a text
file called ``.mp3`` scores as an MP3), so the file is handed to it as an unnamed file
object and only the content decides. What it finds must be one of the accepted
container/codec pairs; anything else is ``unsupported_audio``. A file that has the signature
of an accepted container but that FFmpeg cannot open (an MP4 cut before its index) is
``invalid_audio``: the user sent audio, it is broken.

Decoded frames leave here normalised for the filter graphs downstream: timestamps count
samples from zero (sources start at odd offsets: encoder delay, edit lists), and a layout
FFmpeg only knows as "2 channels" (WAV, AIFF) is named, so it can be downmixed.

FFmpeg's own log lines are switched off: everything that matters reaches the caller as an
:class:`~miaou.errors.InvalidInput`, and a worker's stderr is no place for decoder chatter.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

import av
import av.logging
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.stream import Disposition

from miaou.errors import InvalidInput

av.logging.set_level(None)

# FFmpeg demuxer -> (our short container name, accepted codecs; None: any PCM).
ACCEPTED: dict[str, tuple[str, frozenset[str] | None]] = {
    "mp3": ("mp3", frozenset({"mp3"})),
    "wav": ("wav", None),
    "flac": ("flac", frozenset({"flac"})),
    "aiff": ("aiff", None),
    "ogg": ("ogg", frozenset({"vorbis", "opus"})),
    "mov,mp4,m4a,3gp,3g2,mj2": ("m4a", frozenset({"aac", "alac"})),
}
LOSSLESS_CODECS = frozenset({"flac", "alac"})
MAX_CHANNELS = 8
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 8_000, 384_000
# FFmpeg's default layouts, by channel count, for sources that give only a count.
DEFAULT_LAYOUTS = {
    1: "mono",
    2: "stereo",
    3: "2.1",
    4: "4.0",
    5: "5.0(side)",
    6: "5.1(side)",
    7: "6.1",
    8: "7.1",
}
_SIGNATURE_BYTES = 12


def invalid(message: str, code: str) -> InvalidInput:
    return InvalidInput(message, code=code, errors={"file": [message]})


@dataclass(frozen=True)
class Source:
    """An opened audio file: its one audio stream and what the container says about it."""

    container: InputContainer
    stream: AudioStream
    kind: str  # our short container name: mp3, wav, flac, aiff, ogg, m4a
    codec: str
    sample_rate: int
    channels: int
    layout: str
    declared: float | None  # duration in seconds per the container, if it gives one

    @property
    def lossless(self) -> bool:
        return self.codec.startswith("pcm_") or self.codec in LOSSLESS_CODECS


class _Unnamed(io.RawIOBase):
    """A file FFmpeg can read and seek but whose name it cannot see."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()


@contextmanager
def open_audio(path: Path) -> Iterator[Source]:
    """Open ``path`` as audio; raises ``InvalidInput`` unless it is an accepted format."""
    with path.open("rb") as file:
        head = file.read(_SIGNATURE_BYTES)
        file.seek(0)
        try:
            container = av.open(_Unnamed(file), mode="r")
        except (av.FFmpegError, ValueError):
            if _looks_like_accepted(head):
                raise invalid(
                    "The audio file is damaged and cannot be read.", "invalid_audio"
                ) from None
            raise invalid(
                "This file is not audio in a supported format.", "unsupported_audio"
            ) from None
        with container:
            yield _describe(container)


def _describe(container: InputContainer) -> Source:
    accepted = ACCEPTED.get(container.format.name)
    if accepted is None:
        raise invalid(
            f"Unsupported format ({container.format.name}); "
            "send MP3, WAV, FLAC, AIFF, Ogg Vorbis/Opus or M4A (AAC/ALAC).",
            "unsupported_audio",
        )
    kind, codecs = accepted
    if any(not (s.disposition & Disposition.attached_pic) for s in container.streams.video):
        raise invalid("The file contains video; send audio only.", "unsupported_audio")
    if not container.streams.audio:
        raise invalid("The file contains no audio stream.", "unsupported_audio")
    stream = container.streams.audio[0]
    context = stream.codec_context
    codec = context.codec.canonical_name
    if not (codec in codecs if codecs is not None else codec.startswith("pcm_")):
        raise invalid(f"Unsupported audio codec {codec} in {kind}.", "unsupported_audio")
    channels, rate = context.channels, context.sample_rate
    if not 1 <= channels <= MAX_CHANNELS:
        raise invalid(f"Unsupported channel count ({channels}).", "unsupported_audio")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise invalid(f"Unsupported sample rate ({rate} Hz).", "unsupported_audio")
    layout = context.layout.name
    if layout == f"{channels} channels":
        # Named before the decoder opens, its frames carry the name (frames' is read-only).
        layout = DEFAULT_LAYOUTS[channels]
        context.layout = layout
    return Source(
        container, stream, kind, codec, rate, channels, layout, _declared_duration(container)
    )


def _declared_duration(container: InputContainer) -> float | None:
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _looks_like_accepted(head: bytes) -> bool:
    """The signature of an accepted container (only used to name a failure)."""
    id3 = head[:3] == b"ID3" and head[3] in (2, 3, 4) and all(b < 0x80 for b in head[6:10])
    return (
        id3
        or head.startswith((b"fLaC", b"OggS"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WAVE")
        or (head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"))
        or head[4:8] == b"ftyp"
        or (len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)  # MPEG audio sync
    )


def decode(source: Source) -> Iterator[AudioFrame]:
    """Every decoded frame of the source, timestamps counted in samples from zero.

    Raises ``invalid_audio`` on a decode error or when the audio changes rate or channels
    mid-stream (chained Ogg): the filter graphs downstream are built for one format.
    """
    rate, channels = source.sample_rate, source.channels
    time_base = Fraction(1, rate)
    position = 0
    try:
        for packet in source.container.demux(source.stream):
            for frame in packet.decode():
                if not isinstance(frame, AudioFrame):
                    continue
                if frame.sample_rate != rate or frame.layout.nb_channels != channels:
                    raise invalid(
                        "The audio changes sample rate or channels part-way.", "invalid_audio"
                    )
                frame.pts = position
                frame.time_base = time_base
                position += frame.samples
                yield frame
    except av.FFmpegError as exc:
        raise invalid(f"The audio could not be decoded ({reason(exc)}).", "invalid_audio") from None


def reason(exc: av.FFmpegError) -> str:
    # FFmpeg's message ("Invalid data found when processing input"), without PyAV's context.
    return str(getattr(exc, "strerror", None) or "decoder error").rstrip(".").lower()
