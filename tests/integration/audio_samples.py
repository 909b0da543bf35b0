"""Audio made in the tests with PyAV: a music-like signal (chord, noise, a beat) encoded in
each format an upload accepts, and decoding helpers to check what the node made."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

RATE = 44_100
# extension -> (container format, codec, sample format, options)
FORMATS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    "mp3": ("mp3", "libmp3lame", "s16p", {}),
    "wav": ("wav", "pcm_s16le", "s16", {}),
    "flac": ("flac", "flac", "s16", {}),
    "aiff": ("aiff", "pcm_s16be", "s16", {}),
    "ogg": ("ogg", "vorbis", "fltp", {"strict": "experimental"}),
    "opus": ("ogg", "libopus", "flt", {}),
    "m4a": ("ipod", "aac", "fltp", {}),
}


def signal(seconds: float, rate: int = RATE) -> np.ndarray:
    """Stereo float32 in [-1, 1], shape (2, n): a chord with a 120 BPM pulse and some noise."""
    t = np.arange(int(seconds * rate)) / rate
    chord = sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63)) / 3
    pulse = 0.5 + 0.5 * (np.mod(t, 0.5) < 0.1)
    noise = np.random.default_rng(7).normal(0, 0.05, t.size)
    left = 0.5 * chord * pulse + noise
    right = 0.5 * np.roll(chord, 50) * pulse + noise
    return np.clip(np.stack([left, right]), -1, 1).astype(np.float32)


def encode(path: Path, extension: str, seconds: float) -> Path:
    """Write ``seconds`` of :func:`signal` to ``path`` in the format named by ``extension``."""
    container_format, codec, sample_format, options = FORMATS[extension]
    rate = 48_000 if codec == "libopus" else RATE
    samples = signal(seconds, rate)
    with av.open(str(path), "w", format=container_format) as out:
        stream = out.add_stream(codec, rate=rate, layout="stereo")
        stream.codec_context.options = options
        frame_size = stream.codec_context.frame_size or 1024
        pts = 0
        for start in range(0, samples.shape[1], frame_size):
            chunk = samples[:, start : start + frame_size]
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(chunk), format="fltp", layout="stereo"
            )
            frame.sample_rate = rate
            frame.pts = pts
            frame.time_base = Fraction(1, rate)
            pts += chunk.shape[1]
            for converted in _resample(frame, sample_format, rate):
                for packet in stream.encode(converted):
                    out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


_resamplers: dict[tuple[str, int], av.AudioResampler] = {}


def _resample(frame: av.AudioFrame, sample_format: str, rate: int) -> list[av.AudioFrame]:
    key = (sample_format, rate)
    if key not in _resamplers:
        _resamplers[key] = av.AudioResampler(format=sample_format, layout="stereo", rate=rate)
    return list(_resamplers[key].resample(frame))


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode audio bytes (any container PyAV reads): (mono float64 samples, rate)."""
    chunks = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        mono = av.AudioResampler(format="flt", layout="mono", rate=rate)
        for frame in container.decode(stream):
            chunks += [out.to_ndarray().reshape(-1) for out in mono.resample(frame)]
    return (np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)), rate


def decode_stereo(path: Path) -> tuple[np.ndarray, int]:
    """A file decoded to float64 (n, channels) for pyloudnorm."""
    frames = []
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(
            format="flt", layout="stereo", rate=stream.codec_context.sample_rate
        )
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                frames.append(out.to_ndarray().reshape(-1, 2))
    return np.concatenate(frames).astype(np.float64), rate
