"""One decode, many consumers: an FFmpeg filter graph that splits the decoded audio into
the format each consumer needs (loudness meter, analysis samples, encoder inputs).

    abuffer -> asplit -> [branch 0 filters] -> abuffersink 0
                      -> [branch 1 filters] -> abuffersink 1 ...

Conversions (sample format, rate, downmix) happen inside FFmpeg, in C, exactly once per
distinct output format however many encoders read it; Python only moves frame objects.
After each push every sink is drained, so frames queue only between two pushes.

``drive`` is the decode loop around it, shared by ``process``, the ladder alone and the
MP3 download: decode, push, hand out each branch's frames, report progress.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from fractions import Fraction

import av
import av.filter
from av.audio.frame import AudioFrame
from av.filter.context import FilterContext

from miaou.audio.pipeline.progress import Progress
from miaou.audio.pipeline.source import Source, decode, invalid, reason

Filter = tuple[str, Mapping[str, str]]
Branch = Sequence[Filter]
Consumer = Callable[[Sequence[list[AudioFrame]]], None]


def convert(sample_format: str, sample_rate: int, layout: str) -> Filter:
    """The filter that converts to one format (FFmpeg inserts the resampler it needs)."""
    return (
        "aformat",
        {"sample_fmts": sample_format, "sample_rates": str(sample_rate), "channel_layouts": layout},
    )


class Taps:
    """The split graph; built on the first frame, whose format it takes."""

    def __init__(self, branches: Sequence[Branch]) -> None:
        if not branches:
            raise ValueError("at least one branch")
        self.branches = branches
        # The graph must outlive its filter contexts, which PyAV does not ensure: keep it.
        self._graph: av.filter.Graph | None = None
        self._source: FilterContext | None = None
        self._sinks: list[FilterContext] = []

    def push(self, frame: AudioFrame | None) -> list[list[AudioFrame]]:
        """Push a frame (``None``: the end) and return what each branch has ready."""
        if self._source is None:
            if frame is None:
                return [[] for _ in self.branches]
            self._build(frame)
        assert self._source is not None
        self._source.push(frame)
        return [_drain(sink) for sink in self._sinks]

    def _build(self, frame: AudioFrame) -> None:
        graph = av.filter.Graph()
        source = graph.add(
            "abuffer",
            sample_rate=str(frame.sample_rate),
            sample_fmt=frame.format.name,
            channel_layout=frame.layout.name,
            time_base=str(Fraction(1, frame.sample_rate)),
        )
        split = None
        if len(self.branches) > 1:
            split = graph.add("asplit", str(len(self.branches)))
            source.link_to(split)
        for index, branch in enumerate(self.branches):
            upstream, output = (split, index) if split is not None else (source, 0)
            for name, args in branch:
                node = graph.add(name, **args)
                upstream.link_to(node, output, 0)
                upstream, output = node, 0
            sink = graph.add("abuffersink")
            upstream.link_to(sink, output, 0)
            self._sinks.append(sink)
        graph.configure()
        self._graph, self._source = graph, source


def _drain(sink: FilterContext) -> list[AudioFrame]:
    frames: list[AudioFrame] = []
    while True:
        try:
            frame = sink.pull()
        except (av.error.BlockingIOError, av.error.EOFError):
            return frames
        assert isinstance(frame, AudioFrame)
        frames.append(frame)


def drive(audio: Source, taps: Taps, consume: Consumer, progress: Progress) -> int:
    """Decode all of ``audio`` through ``taps`` into ``consume``; the samples decoded.

    A filter refusing the audio is the file's fault (``invalid_audio``); an encoder or
    muxer failing (a full disk) is ours, and propagates as it is.
    """
    samples = 0
    for frame in decode(audio):
        samples += frame.samples
        consume(_push(taps, frame))
        progress.at(samples / audio.sample_rate)
    consume(_push(taps, None))
    return samples


def _push(taps: Taps, frame: AudioFrame | None) -> list[list[AudioFrame]]:
    try:
        return taps.push(frame)
    except av.FFmpegError as exc:
        raise invalid(
            f"The audio could not be converted ({reason(exc)}).", "invalid_audio"
        ) from None
