"""A tempo estimate, in beats per minute, or ``None`` for audio without a beat.

Cheap on purpose (a hint for search and DJ-ish sorting, not beat tracking): the classic
onset-strength + autocorrelation method, in numpy, streamed as the audio decodes.

1. The mono mix is decimated to about 11 kHz (the mean of each group of samples: a crude
   low-pass, plenty for onsets).
2. Onset strength: spectral flux, the sum over frequency of the rise in log magnitude
   between successive 1024-point frames, one value per 128 samples (~86 per second).
3. Its autocorrelation is searched for the strongest period between 60 and 200 BPM,
   weighted by a broad prior around 120 BPM (a period and its double both correlate; the
   prior picks the one listeners tap), then halved if half the period correlates nearly as
   well (so that a fast pulse is not read at half speed), and refined by parabolic
   interpolation.
4. No beat: onsets must carry a minimum share of the spectrum's level (steady tones and
   chords do not), and the autocorrelation at the chosen period, relative to its value at
   lag zero, must pass ``MIN_SALIENCE`` (noise has onsets everywhere, periodic nowhere).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TARGET_RATE = 11_025
FRAME = 1024
HOP = 128
# log(1 + 100 |X|): a log scale for anything within ~40 dB of full scale, so the estimate
# does not depend on the track's level.
COMPRESSION = 100.0
# Rises smaller than this (in log magnitude, ~10 %) are frame-to-frame ripple of steady
# sounds (window leakage), not onsets.
RISE_FLOOR = 0.1
MIN_BPM, MAX_BPM = 60.0, 200.0
PRIOR_BPM, PRIOR_OCTAVES = 120.0, 1.0
MIN_SALIENCE = 0.2
OCTAVE_UP = 0.9
# Onsets must carry this share of the spectrum's level: sustained chords beat slowly
# (their partials interfere) and would otherwise read as a tempo.
MIN_ONSET_SHARE = 0.02
MIN_SECONDS = 6.0  # fewer than a few beats say nothing about tempo
_WINDOW = np.hanning(FRAME).astype(np.float32)


class TempoEstimator:
    """Streams mono samples into an onset envelope; ``result()`` estimates the tempo."""

    def __init__(self, sample_rate: int) -> None:
        self.decimation = max(1, sample_rate // TARGET_RATE)
        self.rate = sample_rate / self.decimation / HOP  # envelope values per second
        self._undecimated: npt.NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._buffer: npt.NDArray[np.float32] = np.empty(0, dtype=np.float32)
        self._previous: npt.NDArray[np.float32] | None = None
        self._values: list[npt.NDArray[np.float32]] = []
        self._level = 0.0

    def feed(self, mono: npt.NDArray[np.int16]) -> None:
        scaled = mono.astype(np.float32) / 32768
        samples = np.concatenate((self._undecimated, scaled)).astype(np.float32, copy=False)
        whole = len(samples) - len(samples) % self.decimation
        self._undecimated = samples[whole:]
        decimated = samples[:whole].reshape(-1, self.decimation).mean(axis=1)
        buffer = np.concatenate((self._buffer, decimated))
        frames = (len(buffer) - FRAME) // HOP + 1 if len(buffer) >= FRAME else 0
        if frames <= 0:
            self._buffer = buffer
            return
        windows = np.lib.stride_tricks.sliding_window_view(buffer, FRAME)[::HOP][:frames]
        magnitude = np.abs(np.fft.rfft(windows * _WINDOW, axis=1))
        spectra = np.log1p(COMPRESSION * magnitude).astype(np.float32)
        previous = spectra[:1] if self._previous is None else self._previous[None, :]
        rise = np.diff(spectra, axis=0, prepend=previous)
        self._values.append(np.maximum(rise - RISE_FLOOR, 0).sum(axis=1))
        self._level += float(spectra.sum())
        self._previous = spectra[-1]
        self._buffer = buffer[frames * HOP :]

    def envelope(self) -> npt.NDArray[np.float32]:
        if not self._values:
            return np.empty(0, dtype=np.float32)
        return np.concatenate(self._values)

    def result(self) -> float | None:
        envelope = self.envelope()
        if self._level <= 0 or float(envelope.sum()) < MIN_ONSET_SHARE * self._level:
            return None
        return estimate_bpm(envelope, self.rate)


def estimate_bpm(envelope: npt.NDArray[np.float32], rate: float) -> float | None:
    """The tempo of an onset envelope sampled at ``rate`` per second, or ``None``."""
    if len(envelope) < MIN_SECONDS * rate:
        return None
    signal = envelope.astype(np.float64) - float(envelope.mean())
    size = 1 << (2 * len(signal) - 1).bit_length()
    spectrum = np.fft.rfft(signal, size)
    correlation = np.fft.irfft(spectrum * np.conj(spectrum), size)[: len(signal)]
    if correlation[0] <= 1e-12 * len(signal):
        return None  # a flat envelope: no onsets at all
    # Unbiased: each lag's sum over the overlap it has.
    correlation /= len(signal) - np.arange(len(signal))
    correlation /= correlation[0]
    shortest = max(1, int(np.floor(60 * rate / MAX_BPM)))
    longest = min(len(signal) // 2, int(np.ceil(60 * rate / MIN_BPM)))
    if longest <= shortest + 1:
        return None
    lags = np.arange(shortest, longest + 1)
    bpms = 60 * rate / lags
    prior = np.exp(-0.5 * (np.log2(bpms / PRIOR_BPM) / PRIOR_OCTAVES) ** 2)
    best = int(lags[np.argmax(correlation[lags] * prior)])
    if correlation[best] < MIN_SALIENCE:
        return None
    # A pulse correlates at every multiple of its period: if half this period correlates
    # nearly as well, it is the period (clicks at 174 BPM are not 87 BPM).
    half = best // 2 + int(np.argmax(correlation[best // 2 : best // 2 + 2]))
    if half >= shortest and correlation[half] >= OCTAVE_UP * correlation[best]:
        best = half
    left, centre, right = (float(c) for c in correlation[best - 1 : best + 2])
    bpm = 60 * rate / (best + _vertex_offset(left, centre, right))
    return round(bpm, 1) if MIN_BPM <= bpm <= MAX_BPM else None


def _vertex_offset(left: float, centre: float, right: float) -> float:
    """Where the parabola through three neighbouring values peaks, from the centre one."""
    curvature = left - 2 * centre + right
    return 0.0 if curvature >= 0 else 0.5 * (left - right) / curvature
