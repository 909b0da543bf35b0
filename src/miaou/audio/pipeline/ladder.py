"""The playback ladder: AAC-LC at 64, 128 and 256 kb/s and Opus at 128 kb/s, each an HLS
VOD rendition of fMP4 segments, plus ``progressive.m4a`` for players without HLS.

Encoders read frames already converted by the split graph (``taps``): one conversion per
input format, shared by the renditions that need it. AAC runs at 44.1 kHz when the source
is a multiple of it (CD-family material stays unresampled) and at 48 kHz otherwise; Opus
only knows 48 kHz. Mono stays mono, more channels are downmixed to stereo.

The progressive file holds the very packets of the 128 kb/s AAC rendition, muxed a second
time (``movflags=faststart``: its index first, so playback starts before the download
ends): one encode fewer, and the same audio whichever way a listener gets it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.packet import Packet

from miaou.audio.pipeline import hls
from miaou.audio.pipeline.progress import Progress
from miaou.audio.pipeline.source import open_audio
from miaou.audio.pipeline.taps import Filter, Taps, convert, drive

PROGRESSIVE = "progressive.m4a"


@dataclass(frozen=True)
class Rendition:
    name: str
    encoder: str  # FFmpeg's encoder
    bitrate: int
    codecs: str  # the HLS CODECS attribute (RFC 6381)


LADDER = (
    Rendition("aac_64", "aac", 64_000, "mp4a.40.2"),
    Rendition("aac_128", "aac", 128_000, "mp4a.40.2"),
    Rendition("aac_256", "aac", 256_000, "mp4a.40.2"),
    Rendition("opus_128", "libopus", 128_000, "opus"),
)
PROGRESSIVE_FROM = "aac_128"
CODEC_NAMES = {"aac": "aac", "libopus": "opus"}


@dataclass(frozen=True)
class Variant:
    """A finished rendition, measured from its segments."""

    name: str
    codec: str  # aac, opus
    codecs: str
    bitrate: int  # what the encoder was asked for, bits/s
    bandwidth: int  # peak segment bit rate, bits/s
    average_bandwidth: int
    playlist: str  # relative to the output directory
    segments: int


@dataclass(frozen=True)
class Ladder:
    variants: tuple[Variant, ...]
    master: str
    progressive: str


def output_layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def aac_rate(source_rate: int) -> int:
    return 44_100 if source_rate % 11_025 == 0 else 48_000


def _input_format(encoder: str, source_rate: int) -> tuple[str, int]:
    """(sample format, rate) an encoder takes: planar float for AAC, packed for libopus."""
    return ("fltp", aac_rate(source_rate)) if encoder == "aac" else ("flt", 48_000)


@dataclass
class _Output:
    rendition: Rendition
    container: OutputContainer
    stream: AudioStream


class LadderWriter:
    """Encodes and muxes every rendition; a context manager that closes what it opened."""

    def __init__(self, out_dir: Path, sample_rate: int, channels: int) -> None:
        self.out_dir = out_dir
        layout = output_layout(channels)
        formats = {r.name: _input_format(r.encoder, sample_rate) for r in LADDER}
        # One branch of the split graph per distinct input format.
        distinct = list(dict.fromkeys(formats.values()))
        self.inputs: list[Filter] = [convert(fmt, rate, layout) for fmt, rate in distinct]
        self._by_input: list[list[_Output]] = [[] for _ in distinct]
        self._samples = [0] * len(distinct)
        self._rates = [rate for _fmt, rate in distinct]
        self._progressive: OutputContainer | None = None
        self._progressive_stream: AudioStream | None = None
        self._outputs: list[_Output] = []
        try:
            for rendition in LADDER:
                fmt_rate = formats[rendition.name]
                output = self._open(rendition, fmt_rate[1], layout)
                self._by_input[distinct.index(fmt_rate)].append(output)
                self._outputs.append(output)
        except BaseException:
            self.abort()
            raise

    def _open(self, rendition: Rendition, rate: int, layout: str) -> _Output:
        directory = self.out_dir / rendition.name
        directory.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(directory / hls.PLAYLIST),
            mode="w",
            format="hls",
            container_options=hls.muxer_options(directory),
        )
        stream = container.add_stream(rendition.encoder, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        stream.bit_rate = rendition.bitrate
        stream.time_base = Fraction(1, rate)
        return _Output(rendition, container, stream)

    def write(self, branch: int, frames: Sequence[AudioFrame | None]) -> None:
        """Encode frames of input ``branch`` (``None`` flushes the encoders)."""
        rate = self._rates[branch]
        for frame in frames:
            if frame is not None:
                # Contiguous timestamps from zero, whatever the resampler carried over.
                frame.pts = self._samples[branch]
                frame.time_base = Fraction(1, rate)
                self._samples[branch] += frame.samples
            for output in self._by_input[branch]:
                for packet in output.stream.encode(frame):
                    output.container.mux(packet)
                    if output.rendition.name == PROGRESSIVE_FROM:
                        self._mux_progressive(output, packet)

    def _mux_progressive(self, output: _Output, packet: Packet[AudioStream]) -> None:
        if self._progressive is None:
            # Opened on the first packet: by then the encoder is open and the HLS stream
            # carries its parameters (the AAC config), which this copies.
            self._progressive = av.open(
                str(self.out_dir / PROGRESSIVE),
                mode="w",
                format="ipod",
                container_options={"movflags": "+faststart"},
            )
            self._progressive_stream = self._progressive.add_stream_from_template(output.stream)
        assert self._progressive_stream is not None
        packet.stream = self._progressive_stream
        self._progressive.mux(packet)

    def finish(self) -> Ladder:
        """Flush the encoders, close the files, measure and write the master playlist."""
        for branch in range(len(self.inputs)):
            self.write(branch, [None])
        self.close()
        variants = tuple(self._measured(output.rendition) for output in self._outputs)
        hls.write_master(
            self.out_dir / hls.MASTER,
            [
                hls.StreamInf(v.playlist, v.bandwidth, v.average_bandwidth, v.codecs)
                for v in variants
            ],
        )
        return Ladder(variants, hls.MASTER, PROGRESSIVE)

    def _measured(self, rendition: Rendition) -> Variant:
        playlist = f"{rendition.name}/{hls.PLAYLIST}"
        measured = hls.measure(self.out_dir / playlist)
        return Variant(
            name=rendition.name,
            codec=CODEC_NAMES[rendition.encoder],
            codecs=rendition.codecs,
            bitrate=rendition.bitrate,
            bandwidth=measured.bandwidth,
            average_bandwidth=measured.average_bandwidth,
            playlist=playlist,
            segments=measured.segments,
        )

    def close(self) -> None:
        for output in self._outputs:
            output.container.close()
        if self._progressive is not None:
            self._progressive.close()

    def abort(self) -> None:
        """Close everything, ignoring errors: the caller discards the directory."""
        for container in [o.container for o in self._outputs] + [self._progressive]:
            if container is not None:
                try:
                    container.close()
                except (av.FFmpegError, OSError):
                    continue

    def __enter__(self) -> LadderWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self.abort()
        else:
            self.close()  # a no-op after finish(); closing twice is safe in PyAV


def encode_ladder(
    source: Path, out_dir: Path, progress: Callable[[float], None] = lambda _: None
) -> Ladder:
    """Only the ladder, without analysis: to re-encode when the ladder changes (and to
    measure its cost alone)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (
        open_audio(source) as audio,
        LadderWriter(out_dir, audio.sample_rate, audio.channels) as ladder,
    ):
        reporter = Progress(progress, audio.declared)
        taps = Taps([[f] for f in ladder.inputs])

        def consume(ready: Sequence[list[AudioFrame]]) -> None:
            for branch, frames in enumerate(ready):
                ladder.write(branch, frames)

        drive(audio, taps, consume, reporter)
        result = ladder.finish()
    reporter.done()
    return result
