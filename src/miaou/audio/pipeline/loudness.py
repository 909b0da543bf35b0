"""Loudness: EBU R128 integrated loudness and true peak, and the ReplayGain 2.0 values.

Measured by FFmpeg's ``ebur128`` filter (ITU-R BS.1770 K-weighting and gating, true peak
by 4x oversampling) in the decode's filter graph; with ``metadata=1`` every frame leaving it
carries the running figures (``lavfi.r128.I``, ``lavfi.r128.true_peak``), so the last frame
holds the track's. The filter outputs its input unchanged otherwise, and we drop it.

ReplayGain 2.0 plays a track at -18 LUFS, so its gain is ``-18 - I`` dB; its peak is the
(linear) true peak. Audio with nothing above the -70 LUFS absolute gate (silence) has no
loudness: those fields are ``None`` rather than a gain of +52 dB.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

FILTER = ("ebur128", {"metadata": "1", "peak": "true"})
REPLAYGAIN_REFERENCE_LUFS = -18.0
# ebur128 reports -70 LUFS (the absolute gate) when no block passed it.
_SILENT_LUFS = -70.0
_INTEGRATED = "lavfi.r128.I"
_TRUE_PEAK = "lavfi.r128.true_peak"
_CHANNEL_PEAK = "lavfi.r128.true_peaks_ch"


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float | None
    true_peak_dbtp: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float  # linear, 1.0 = full scale


class LoudnessMeter:
    """Keeps the figures of the last frame out of the ``ebur128`` filter."""

    def __init__(self) -> None:
        self._last: Mapping[str, str] = {}

    def feed(self, metadata: Mapping[str, str]) -> None:
        if _INTEGRATED in metadata:
            self._last = dict(metadata)

    def result(self) -> Loudness:
        integrated = _number(self._last.get(_INTEGRATED))
        # FFmpeg writes the overall true peak; older builds only the per-channel ones.
        peaks = [_number(v) for k, v in self._last.items() if k.startswith(_CHANNEL_PEAK)]
        peak = _number(self._last.get(_TRUE_PEAK))
        if peak is None:
            peak = max((p for p in peaks if p is not None), default=0.0)
        if integrated is None or integrated <= _SILENT_LUFS:
            integrated = None
        return Loudness(
            integrated_lufs=None if integrated is None else round(integrated, 2),
            true_peak_dbtp=round(20 * math.log10(peak), 2) if peak > 0 else None,
            replaygain_track_gain_db=(
                None if integrated is None else round(REPLAYGAIN_REFERENCE_LUFS - integrated, 2)
            ),
            replaygain_track_peak=round(peak, 6),
        )


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None
