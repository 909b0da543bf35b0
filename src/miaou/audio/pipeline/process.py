"""Process an accepted upload into everything playback needs, from ONE decode of it.

    decode -> split graph -> ebur128                    -> loudness
                          -> s16, source rate & layout  -> mono mix -> waveform, tempo
                          -> fltp, 44.1/48 kHz, stereo  -> AAC 64, 128, 256 (+ progressive)
                          -> flt, 48 kHz, stereo        -> Opus 128

Decoding once matters: decoding a FLAC or an MP3 costs as much as measuring it, and the
encoders dominate anyway (the ladder is ~85 % of the CPU). FFmpeg converts and encodes;
numpy sees only the 16-bit samples the waveform and the tempo need, a frame at a time.

The output directory receives ``master.m3u8``, one directory per rendition,
``progressive.m4a``, ``waveform.json`` and ``waveform.dat``; :class:`ProcessResult` says
what they are. The caller runs this in a child process and owns the directory (it is
discarded on failure). ``inspect`` has validated the file; a decode error here still
raises ``InvalidInput(code="invalid_audio")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from av.audio.frame import AudioFrame

from miaou.audio.pipeline import loudness
from miaou.audio.pipeline.bpm import TempoEstimator
from miaou.audio.pipeline.ladder import LadderWriter, Variant
from miaou.audio.pipeline.loudness import Loudness, LoudnessMeter
from miaou.audio.pipeline.progress import Progress
from miaou.audio.pipeline.source import open_audio
from miaou.audio.pipeline.taps import Taps, convert, drive
from miaou.audio.pipeline.waveform import WaveformBuilder, mono_mix

_LOUDNESS, _ANALYSIS = 0, 1  # the first branches of the split graph; the ladder's follow


@dataclass(frozen=True)
class ProcessResult:
    duration: float  # seconds, as decoded
    loudness: Loudness
    bpm: float | None
    variants: tuple[Variant, ...]
    master_playlist: str  # file names, relative to the output directory
    progressive: str
    waveform_json: str
    waveform_dat: str
    waveform_points: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (a job's result, an API answer)."""
        body = asdict(self)
        body["variants"] = [asdict(v) for v in self.variants]
        return body


def process(source: Path, out_dir: Path, progress: Callable[[float], None]) -> ProcessResult:
    """Decode ``source`` once into loudness, waveform, tempo and the HLS ladder in
    ``out_dir``; ``progress(fraction)`` follows the decode and ends with ``1.0``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_audio(source) as audio:
        meter = LoudnessMeter()
        waveform = WaveformBuilder(audio.sample_rate)
        tempo = TempoEstimator(audio.sample_rate)
        channels = audio.channels
        with LadderWriter(out_dir, audio.sample_rate, channels) as ladder:
            analysis = convert("s16", audio.sample_rate, audio.layout)
            taps = Taps([[loudness.FILTER], [analysis], *[[f] for f in ladder.inputs]])

            def consume(ready: Sequence[list[AudioFrame]]) -> None:
                for frame in ready[_LOUDNESS]:
                    meter.feed(frame.metadata)
                for frame in ready[_ANALYSIS]:
                    samples = np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1)
                    mono = mono_mix(samples, channels)
                    waveform.feed(mono)
                    tempo.feed(mono)
                for branch, frames in enumerate(ready[_ANALYSIS + 1 :]):
                    ladder.write(branch, frames)

            samples = drive(audio, taps, consume, Progress(progress, audio.declared))
            built = ladder.finish()
        duration = samples / audio.sample_rate
    peaks = waveform.finish()
    json_name, dat_name = peaks.write(out_dir)
    result = ProcessResult(
        duration=duration,
        loudness=meter.result(),
        bpm=tempo.result(),
        variants=built.variants,
        master_playlist=built.master,
        progressive=built.progressive,
        waveform_json=json_name,
        waveform_dat=dat_name,
        waveform_points=peaks.length,
    )
    progress(1.0)
    return result
