"""HLS VOD: how FFmpeg's ``hls`` muxer is asked for fMP4 segments, how a finished
rendition's bit rates are measured, and the master playlist that lists the renditions.

Each rendition is a directory: ``index.m3u8`` (written by the muxer), ``init.mp4`` (the
fMP4 header, ``EXT-X-MAP``) and ``seg_00000.m4s``... of about six seconds (audio packets
are all key frames, so the muxer cuts at the first packet past each six seconds).

``BANDWIDTH`` is RFC 8216's peak segment bit rate, as the current revision of the RFC
(8216bis, 4.4.6.2) defines it: the highest bit rate of any run of consecutive segments
lasting 0.5 to 1.5 target durations, so a tiny last segment whose box headers outweigh its
audio does not inflate it. ``AVERAGE-BANDWIDTH`` is all segment bytes over all seconds.
Both count media segments only, as the RFC does, not the init section.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SEGMENT_SECONDS = 6
PLAYLIST, INIT = "index.m3u8", "init.mp4"
SEGMENT_PATTERN = "seg_%05d.m4s"
MASTER = "master.m3u8"


def muxer_options(directory: Path) -> dict[str, str]:
    """``container_options`` for ``av.open(directory / PLAYLIST, "w", format="hls")``."""
    # The segment name is a printf pattern: a '%' in the directory must not be one.
    pattern = f"{str(directory.resolve()).replace('%', '%%')}/{SEGMENT_PATTERN}"
    return {
        "hls_time": str(SEGMENT_SECONDS),
        "hls_playlist_type": "vod",
        "hls_list_size": "0",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": INIT,
        "hls_segment_filename": pattern,
        "hls_flags": "independent_segments",
    }


@dataclass(frozen=True)
class Segment:
    uri: str
    duration: float
    size: int


@dataclass(frozen=True)
class Measured:
    segments: int
    bandwidth: int  # peak, bits/s
    average_bandwidth: int


def read_segments(playlist: Path) -> tuple[int, list[Segment]]:
    """The target duration and segments of a media playlist, with their sizes on disk."""
    target, segments, duration = 0, [], None
    for line in playlist.read_text().splitlines():
        line = line.strip()
        if line.startswith("#EXT-X-TARGETDURATION:"):
            target = int(line.split(":", 1)[1])
        elif line.startswith("#EXTINF:"):
            duration = float(line.split(":", 1)[1].split(",", 1)[0])
        elif line and not line.startswith("#") and duration is not None:
            size = (playlist.parent / line).stat().st_size
            segments.append(Segment(line, duration, size))
            duration = None
    return target, segments


def measure(playlist: Path) -> Measured:
    target, segments = read_segments(playlist)
    if not segments:
        raise ValueError(f"{playlist} lists no segments")
    seconds = sum(s.duration for s in segments)
    average = sum(s.size for s in segments) * 8 / seconds
    return Measured(
        len(segments), round(_peak(segments, target or SEGMENT_SECONDS)), round(average)
    )


def _peak(segments: list[Segment], target: float) -> float:
    low, high = 0.5 * target, 1.5 * target
    peak = 0.0
    for start in range(len(segments)):
        size, seconds = 0, 0.0
        for segment in segments[start:]:
            size, seconds = size + segment.size, seconds + segment.duration
            if seconds > high:
                break
            if seconds >= low:
                peak = max(peak, size * 8 / seconds)
    # Only a playlist of one segment shorter than half its target has no qualifying run.
    return peak or max(s.size * 8 / max(s.duration, 1e-3) for s in segments)


@dataclass(frozen=True)
class StreamInf:
    uri: str
    bandwidth: int
    average_bandwidth: int
    codecs: str


def write_master(path: Path, streams: list[StreamInf]) -> None:
    """The multivariant playlist; players pick by ``CODECS`` and ``BANDWIDTH``."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for stream in streams:
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={stream.bandwidth},"
            f'AVERAGE-BANDWIDTH={stream.average_bandwidth},CODECS="{stream.codecs}"'
        )
        lines.append(stream.uri)
    path.write_text("\n".join(lines) + "\n")
