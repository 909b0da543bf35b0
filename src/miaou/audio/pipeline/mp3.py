"""The MP3 download: made on demand from the original (not kept), with LAME.

MP3 because every device plays it; 320 kb/s because it is a download, not a stream. The
MPEG-1 rates are 32, 44.1 and 48 kHz: other sources are resampled to the nearest family.
FFmpeg's muxer writes the Xing/LAME header (exact length, gapless playback) and an ID3v2
tag from ``tags`` (title, artist, album, date, track, genre, comment).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame

from miaou.audio.pipeline.ladder import output_layout
from miaou.audio.pipeline.progress import Progress
from miaou.audio.pipeline.source import open_audio
from miaou.audio.pipeline.taps import Taps, convert, drive

MPEG1_RATES = (32_000, 44_100, 48_000)


def mp3_rate(source_rate: int) -> int:
    if source_rate in MPEG1_RATES:
        return source_rate
    return 44_100 if source_rate % 11_025 == 0 else 48_000


def transcode_mp3(
    source: Path,
    dest: Path,
    bitrate: int = 320_000,
    progress: Callable[[float], None] = lambda _: None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Write ``source`` to ``dest`` as a CBR MP3; raises ``InvalidInput`` like ``process``."""
    with open_audio(source) as audio:
        rate = mp3_rate(audio.sample_rate)
        with av.open(str(dest), mode="w", format="mp3") as out:
            out.metadata.update(tags or {})
            stream = out.add_stream("libmp3lame", rate=rate, layout=output_layout(audio.channels))
            stream.bit_rate = bitrate
            taps = Taps([[convert("fltp", rate, stream.layout.name)]])
            position = 0

            def consume(ready: Sequence[list[AudioFrame]]) -> None:
                nonlocal position
                for frame in ready[0]:
                    frame.pts, frame.time_base = position, Fraction(1, rate)
                    position += frame.samples
                    out.mux(stream.encode(frame))

            drive(audio, taps, consume, Progress(progress, audio.declared))
            out.mux(stream.encode(None))
    progress(1.0)
