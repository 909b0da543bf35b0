"""Test audio made on the spot with PyAV: tones, noise and clicks in every accepted format.

Nothing is checked in: each file is generated from numpy signals, so a test states what
the audio is (a 128 BPM click track, a 440 Hz tone) instead of trusting a fixture's name.
"""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest

Signal = npt.NDArray[np.float32]  # (channels, samples), -1..1

# name -> (FFmpeg muxer, encoder, sample rate, encoder options)
FORMATS: dict[str, tuple[str, str, int, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", 44_100, {}),
    "wav": ("wav", "pcm_s16le", 44_100, {}),
    "flac": ("flac", "flac", 44_100, {}),
    "aiff": ("aiff", "pcm_s16be", 44_100, {}),
    # FFmpeg's own Vorbis encoder is the one bundled; it is marked experimental.
    "ogg_vorbis": ("ogg", "vorbis", 44_100, {"strict": "experimental"}),
    "ogg_opus": ("ogg", "libopus", 48_000, {}),
    "m4a": ("ipod", "aac", 44_100, {}),
}
CONTAINERS = {
    "mp3": "mp3",
    "wav": "wav",
    "flac": "flac",
    "aiff": "aiff",
    "ogg_vorbis": "ogg",
    "ogg_opus": "ogg",
    "m4a": "m4a",
}
LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1(side)"}


def tone_and_noise(seconds: float, rate: int, channels: int = 2, seed: int = 0) -> Signal:
    """A chord of three partials with a little noise: music-like, never silent."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    chord = sum(a * np.sin(2 * np.pi * f * t) for f, a in ((220, 0.2), (330, 0.12), (440, 0.08)))
    rows = [chord + 0.02 * rng.standard_normal(len(t)) + 0.01 * c for c in range(channels)]
    return np.asarray(rows, dtype=np.float32)


def clicks(bpm: float, seconds: float, rate: int, channels: int = 2) -> Signal:
    """A click (a 1 kHz blip decaying in ~2 ms) on every beat, over a quiet pad."""
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.05 * np.sin(2 * np.pi * 110 * t)
    length = int(0.01 * rate)
    blip = 0.8 * np.sin(2 * np.pi * 1000 * t[:length]) * np.exp(-t[:length] / 0.002)
    for start in (np.arange(0, seconds, 60 / bpm) * rate).astype(int):
        end = min(start + length, len(t))
        signal[start:end] += blip[: end - start]
    return np.tile(signal.astype(np.float32), (channels, 1))


def write_audio(
    path: Path,
    signal: Signal,
    muxer: str,
    encoder: str,
    rate: int,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode ``signal`` (channels x samples) at ``rate`` into ``path``."""
    layout = LAYOUTS[signal.shape[0]]
    with av.open(str(path), "w", format=muxer) as out:
        stream = out.add_stream(encoder, rate=rate, layout=layout)
        if options:
            stream.codec_context.options = options
        for start in range(0, signal.shape[1], 4096):
            chunk = np.ascontiguousarray(signal[:, start : start + 4096])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def write_format(path: Path, name: str, signal: Signal) -> Path:
    muxer, encoder, rate, options = FORMATS[name]
    return write_audio(path, signal, muxer, encoder, rate, options)


def decode_all(source: Path | bytes, layout: str | None = None) -> tuple[Signal, int]:
    """Every sample of a file (or bytes), as float32 (channels x samples), and its rate."""
    opened = av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source))
    with opened as container:
        stream = container.streams.audio[0]
        out_layout = layout or stream.codec_context.layout.name
        if out_layout.endswith("channels"):
            out_layout = LAYOUTS[stream.codec_context.channels]
        resampler = av.AudioResampler("fltp", out_layout, stream.codec_context.sample_rate)
        chunks = [
            f.to_ndarray() for frame in container.decode(stream) for f in resampler.resample(frame)
        ]
        chunks += [f.to_ndarray() for f in resampler.resample(None)]
        return np.concatenate(chunks, axis=1).astype(np.float32), stream.codec_context.sample_rate


class Kit:
    """The helpers above, for tests (a conftest is not imported by name)."""

    formats = FORMATS
    containers = CONTAINERS
    tone_and_noise = staticmethod(tone_and_noise)
    clicks = staticmethod(clicks)
    write_audio = staticmethod(write_audio)
    write_format = staticmethod(write_format)
    decode_all = staticmethod(decode_all)


@pytest.fixture(scope="session")
def kit() -> Kit:
    return Kit()


@pytest.fixture(scope="session")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Five seconds of tone and noise, stereo, in every accepted format (names say nothing
    of the format: ``.bin``)."""
    directory = tmp_path_factory.mktemp("samples")
    return {
        name: write_format(directory / f"{name}.bin", name, tone_and_noise(5, rate))
        for name, (_muxer, _encoder, rate, _options) in FORMATS.items()
    }
