"""The numpy parts on their own: waveform reduction, tempo, loudness figures, progress."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from miaou.audio.pipeline.bpm import TempoEstimator
from miaou.audio.pipeline.loudness import LoudnessMeter
from miaou.audio.pipeline.progress import Progress
from miaou.audio.pipeline.waveform import WaveformBuilder, mono_mix, read_dat


def test_waveform_is_independent_of_frame_boundaries() -> None:
    rng = np.random.default_rng(1)
    stereo = rng.integers(-32768, 32768, size=(10_001, 2), dtype=np.int16)
    mono = mono_mix(stereo.reshape(-1), 2)
    # C-style integer mean, element by element.
    assert mono.tolist() == [
        int(a + b) // 2 if a + b >= 0 else -((-int(a + b)) // 2) for a, b in stereo.tolist()
    ]
    whole = WaveformBuilder(44_100)
    whole.feed(mono)
    chunked = WaveformBuilder(44_100)
    for start in range(0, len(mono), 1_000):  # not a multiple of 256
        chunked.feed(mono[start : start + 1_000])
    a, b = whole.finish(), chunked.finish()
    assert a.length == b.length == 40  # ceil(10001 / 256)
    assert a.data.tolist() == b.data.tolist()
    block = mono[256:512]
    assert a.data[2:4].tolist() == [int(block.min() / 256), int(block.max() / 256)]
    assert a.data[-2:].tolist() == [int(mono[9984:].min() / 256), int(mono[9984:].max() / 256)]
    assert read_dat(a.to_dat()).data.tolist() == a.data.tolist()


def test_read_dat_refuses_what_it_does_not_describe() -> None:
    builder = WaveformBuilder(8_000)
    builder.feed(np.zeros(512, dtype=np.int16))
    dat = builder.finish().to_dat()
    with pytest.raises(ValueError):
        read_dat(dat[:-1])
    with pytest.raises(ValueError):
        read_dat(b"\x01" + dat[1:])  # version 1


def tempo(signal: np.ndarray[Any, Any], rate: int) -> float | None:
    estimator = TempoEstimator(rate)
    pcm = (np.clip(signal, -1, 1) * 32767).astype(np.int16)
    for start in range(0, len(pcm), 4_608):  # an MP3 frame's worth at a time
        estimator.feed(pcm[start : start + 4_608])
    return estimator.result()


@pytest.mark.parametrize(
    ("bpm", "rate"), [(72, 44_100), (100, 22_050), (128, 44_100), (174, 48_000)]
)
def test_click_tempo(bpm: float, rate: int, kit: Any) -> None:
    assert tempo(kit.clicks(bpm, 12, rate, channels=1)[0], rate) == pytest.approx(bpm, rel=0.02)


def test_no_beat_no_tempo(kit: Any) -> None:
    rate = 22_050
    t = np.arange(12 * rate) / rate
    assert tempo(0.3 * np.random.default_rng(2).standard_normal(len(t)), rate) is None
    assert tempo(0.5 * np.sin(2 * np.pi * 440 * t), rate) is None
    # An A major chord, equal-tempered: its partials beat slowly, which is no tempo.
    chord = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63))
    assert tempo(chord, rate) is None
    assert tempo(kit.tone_and_noise(12, rate, channels=1)[0], rate) is None
    assert tempo(np.zeros(len(t)), rate) is None
    assert tempo(kit.clicks(120, 3, rate, channels=1)[0], rate) is None  # too short to tell


def test_loudness_figures() -> None:
    meter = LoudnessMeter()
    meter.feed({"lavfi.r128.I": "-30.000", "lavfi.r128.true_peak": "0.100"})
    meter.feed({"lavfi.r128.M": "-20.0"})  # a frame without the figures changes nothing
    meter.feed({"lavfi.r128.I": "-14.250", "lavfi.r128.true_peak": "0.891"})
    result = meter.result()
    assert result.integrated_lufs == -14.25
    assert result.replaygain_track_gain_db == -3.75
    assert result.replaygain_track_peak == 0.891
    assert result.true_peak_dbtp == pytest.approx(-1.0, abs=0.01)
    silent = LoudnessMeter()
    silent.feed({"lavfi.r128.I": "-70.000", "lavfi.r128.true_peak": "0.000"})
    assert silent.result().integrated_lufs is None
    assert silent.result().true_peak_dbtp is None
    per_channel = LoudnessMeter()
    per_channel.feed(
        {
            "lavfi.r128.I": "-20.0",
            "lavfi.r128.true_peaks_ch0": "0.5",
            "lavfi.r128.true_peaks_ch1": "0.7",
        }
    )
    assert per_channel.result().replaygain_track_peak == 0.7


def test_progress_is_sparse_monotone_and_ends_at_one() -> None:
    calls: list[float] = []
    progress = Progress(calls.append, 60.0)
    for step in range(100_000):
        progress.at(step * 60.0 / 100_000)
    progress.at(70.0)  # past a declared length that was short: still below 1.0
    progress.done()
    assert calls[-1] == 1.0
    assert calls == sorted(calls)
    assert len(calls) <= 101
    assert max(calls[:-1]) < 1.0
    unknown: list[float] = []
    blind = Progress(unknown.append, None)
    blind.at(10.0)
    blind.done()
    assert unknown == [1.0]
