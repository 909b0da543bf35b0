"""Waveform peaks in BBC audiowaveform's format, the one peaks.js and waveform-data.js read.

One channel, 8 bits, 256 samples per point, as ``audiowaveform -b 8 -z 256`` makes them:
the channels are averaged into one 16-bit sample (integer mean), each point is the minimum
and maximum of 256 such samples (the last point of fewer), and 8-bit values are the 16-bit
ones divided by 256, truncated toward zero as C does. Two files, same data:

- ``waveform.json``: ``{"version": 2, "channels": 1, "sample_rate", "samples_per_pixel",
  "bits": 8, "length", "data": [min0, max0, min1, max1, ...]}``;
- ``waveform.dat``: little-endian header (int32 version=2, uint32 flags=1 (8-bit), int32
  sample rate, int32 samples per pixel, uint32 length, int32 channels), then int8 pairs.

Samples arrive frame by frame as interleaved int16 and are reduced as they come, so a
three-hour track costs the peaks (2 bytes a point), never the audio.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

SAMPLES_PER_POINT = 256
VERSION = 2
FLAG_8_BIT = 1
HEADER = struct.Struct("<iIiiIi")
JSON_NAME, DAT_NAME = "waveform.json", "waveform.dat"


@dataclass(frozen=True)
class Waveform:
    sample_rate: int
    data: npt.NDArray[np.int8]  # min0, max0, min1, max1, ...

    @property
    def length(self) -> int:
        return len(self.data) // 2

    def to_json(self) -> dict[str, object]:
        return {
            "version": VERSION,
            "channels": 1,
            "sample_rate": self.sample_rate,
            "samples_per_pixel": SAMPLES_PER_POINT,
            "bits": 8,
            "length": self.length,
            "data": self.data.tolist(),
        }

    def to_dat(self) -> bytes:
        header = HEADER.pack(
            VERSION, FLAG_8_BIT, self.sample_rate, SAMPLES_PER_POINT, self.length, 1
        )
        return header + self.data.tobytes()

    def write(self, out_dir: Path) -> tuple[str, str]:
        """Write both files into ``out_dir``; their names."""
        (out_dir / JSON_NAME).write_text(json.dumps(self.to_json(), separators=(",", ":")))
        (out_dir / DAT_NAME).write_bytes(self.to_dat())
        return JSON_NAME, DAT_NAME


def read_dat(blob: bytes) -> Waveform:
    """Parse a ``waveform.dat`` we wrote (version 2, 8-bit, one channel)."""
    version, flags, rate, per_point, length, channels = HEADER.unpack_from(blob)
    if (version, flags, per_point, channels) != (VERSION, FLAG_8_BIT, SAMPLES_PER_POINT, 1):
        raise ValueError("not a one-channel 8-bit version 2 waveform")
    data = np.frombuffer(blob, dtype=np.int8, offset=HEADER.size)
    if len(data) != 2 * length:
        raise ValueError(f"{len(data) // 2} points for a header of {length}")
    return Waveform(rate, data)


class WaveformBuilder:
    """Reduces mono 16-bit samples to min/max points as they arrive."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._points: list[npt.NDArray[np.int16]] = []
        self._pending = np.empty(0, dtype=np.int16)

    def feed(self, mono: npt.NDArray[np.int16]) -> None:
        if self._pending.size:
            mono = np.concatenate((self._pending, mono))
        whole = len(mono) - len(mono) % SAMPLES_PER_POINT
        if whole:
            self._points.append(_min_max(mono[:whole].reshape(-1, SAMPLES_PER_POINT)))
        self._pending = mono[whole:].copy()

    def finish(self) -> Waveform:
        if self._pending.size:
            self._points.append(_min_max(self._pending.reshape(1, -1)))
            self._pending = self._pending[:0]
        pairs = np.concatenate(self._points) if self._points else np.empty(0, np.int16)
        # C's int8_t(v / 256): the division truncates toward zero, as astype does.
        data = (pairs / 256).astype(np.int8)
        return Waveform(self.sample_rate, data)


def mono_mix(interleaved: npt.NDArray[np.int16], channels: int) -> npt.NDArray[np.int16]:
    """The integer mean of the channels of interleaved int16 samples, as audiowaveform does."""
    if channels == 1:
        return interleaved.reshape(-1).astype(np.int16, copy=False)
    total: npt.NDArray[np.int32] = interleaved.reshape(-1, channels).sum(axis=1, dtype=np.int32)
    # astype truncates toward zero, as C's integer division does (numpy's // floors).
    return (total / channels).astype(np.int16)


def _min_max(blocks: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    pairs = np.empty(2 * len(blocks), dtype=np.int16)
    pairs[0::2] = blocks.min(axis=1)
    pairs[1::2] = blocks.max(axis=1)
    return pairs
