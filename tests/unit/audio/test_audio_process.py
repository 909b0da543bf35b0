"""process(): one run per source, then every output is opened and checked independently:
the HLS renditions and the progressive file decode back to the source's length and are not
silent, the master playlist lists them, the waveform matches the source's samples, the
loudness matches pyloudnorm's, the tempo matches the click track's."""

from __future__ import annotations

import io
import json
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyloudnorm
import pytest

from miaou.audio.pipeline.hls import Segment, _peak, measure, read_segments
from miaou.audio.pipeline.mp3 import transcode_mp3
from miaou.audio.pipeline.process import ProcessResult, process
from miaou.audio.pipeline.waveform import read_dat
from miaou.errors import InvalidInput


@dataclass
class Run:
    source: Path
    out: Path
    result: ProcessResult
    calls: list[float]
    samples: np.ndarray[Any, Any]  # the source, decoded (channels x samples)
    rate: int


def run(kit: Any, directory: Path, name: str, fmt: str, signal: np.ndarray[Any, Any]) -> Run:
    source = kit.write_format(directory / f"{name}.src", fmt, signal)
    calls: list[float] = []
    out = directory / name
    result = process(source, out, calls.append)
    samples, rate = kit.decode_all(source)
    return Run(source, out, result, calls, samples, rate)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, kit: Any) -> dict[str, Run]:
    directory = tmp_path_factory.mktemp("process")
    music = kit.tone_and_noise(14, 44_100) + kit.clicks(128, 14, 44_100)
    mono = kit.tone_and_noise(9, 48_000, channels=1, seed=3)
    return {
        "flac_stereo_128bpm": run(kit, directory, "flac", "flac", music),
        "mp3_mono_48k": run(kit, directory, "mp3", "mp3", mono),
    }


def concatenated(playlist: Path) -> bytes:
    """A fMP4 rendition as one file: its init section followed by its segments."""
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.read_text())
    assert init is not None
    _target, segments = read_segments(playlist)
    parts = [init.group(1)] + [s.uri for s in segments]
    return b"".join((playlist.parent / part).read_bytes() for part in parts)


def rms(samples: np.ndarray[Any, Any]) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))


@pytest.mark.parametrize("name", ["flac_stereo_128bpm", "mp3_mono_48k"])
def test_every_rendition_decodes_to_the_source(name: str, runs: dict[str, Run], kit: Any) -> None:
    r = runs[name]
    seconds = r.samples.shape[1] / r.rate
    channels = r.samples.shape[0]
    assert [v.name for v in r.result.variants] == ["aac_64", "aac_128", "aac_256", "opus_128"]
    expected_rates = {"aac": 44_100 if r.rate == 44_100 else 48_000, "opus": 48_000}
    for variant in r.result.variants:
        playlist = r.out / variant.playlist
        text = playlist.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text
        _target, segments = read_segments(playlist)
        assert variant.segments == len(segments) == math.ceil(seconds / 6 - 0.01)
        assert all(s.duration <= 6.5 for s in segments)
        blob = concatenated(playlist)
        with av.open(io.BytesIO(blob)) as container:
            stream = container.streams.audio[0]
            assert stream.codec_context.codec.canonical_name == variant.codec
            assert stream.codec_context.sample_rate == expected_rates[variant.codec]
            assert stream.codec_context.channels == channels
        decoded, rate = kit.decode_all(blob)
        assert decoded.shape[1] / rate == pytest.approx(seconds, abs=0.1), variant.name
        assert rms(decoded) > 0.5 * rms(r.samples), variant.name


@pytest.mark.parametrize("name", ["flac_stereo_128bpm", "mp3_mono_48k"])
def test_progressive_file(name: str, runs: dict[str, Run], kit: Any) -> None:
    r = runs[name]
    path = r.out / r.result.progressive
    blob = path.read_bytes()
    assert blob.index(b"moov") < blob.index(b"mdat")  # faststart: index first
    with av.open(str(path)) as container:
        assert container.format.name.startswith("mov,mp4,m4a")
        context = container.streams.audio[0].codec_context
        assert (context.codec.canonical_name, context.channels) == ("aac", r.samples.shape[0])
    decoded, rate = kit.decode_all(path)
    assert decoded.shape[1] / rate == pytest.approx(r.samples.shape[1] / r.rate, abs=0.1)
    assert rms(decoded) > 0.5 * rms(r.samples)
    # The very packets of the 128 kb/s rendition, muxed again.
    aac_128 = concatenated(r.out / "aac_128/index.m3u8")
    with av.open(io.BytesIO(aac_128)) as hls, av.open(str(path)) as progressive:
        first = [bytes(p) for p in hls.demux(audio=0) if p.size][:50]
        second = [bytes(p) for p in progressive.demux(audio=0) if p.size][:50]
    assert first == second


def test_master_playlist(runs: dict[str, Run]) -> None:
    r = runs["flac_stereo_128bpm"]
    text = (r.out / r.result.master_playlist).read_text()
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    infs = [
        (lines[i], lines[i + 1])
        for i, line in enumerate(lines)
        if line.startswith("#EXT-X-STREAM-INF:")
    ]
    assert len(infs) == 4
    for (inf, uri), variant in zip(infs, r.result.variants, strict=True):
        attributes = dict(re.findall(r'([A-Z-]+)=("[^"]*"|[^,]*)', inf.split(":", 1)[1]))
        assert uri == variant.playlist and (r.out / uri).is_file()
        assert attributes["CODECS"] == f'"{variant.codecs}"'
        assert attributes["CODECS"] == ('"opus"' if variant.codec == "opus" else '"mp4a.40.2"')
        bandwidth, average = int(attributes["BANDWIDTH"]), int(attributes["AVERAGE-BANDWIDTH"])
        assert (bandwidth, average) == (variant.bandwidth, variant.average_bandwidth)
        assert bandwidth >= average
        # Measured, so near what the encoder was asked for (plus fMP4 overhead).
        assert 0.8 * variant.bitrate < average < 1.3 * variant.bitrate, variant.name
        measured = measure(r.out / uri)
        assert (measured.bandwidth, measured.average_bandwidth) == (bandwidth, average)


def test_bandwidth_is_the_peak_of_runs_near_the_target_duration(tmp_path: Path) -> None:
    segments = [
        Segment("a", 6.0, 60_000),  # 80 kb/s
        Segment("b", 6.0, 90_000),  # 120 kb/s: the peak
        Segment("c", 6.0, 60_000),
        Segment("d", 0.5, 10_000),  # 160 kb/s, but too short to count alone
    ]
    # Runs of 3..9 s: b alone (120k), c+d (70k/6.5s = 86k) ... the peak is b's.
    assert _peak(segments, 6) == pytest.approx(120_000)
    playlist = tmp_path / "index.m3u8"
    lines = ["#EXTM3U", "#EXT-X-TARGETDURATION:6"]
    for segment in segments:
        (tmp_path / segment.uri).write_bytes(b"\0" * segment.size)
        lines += [f"#EXTINF:{segment.duration},", segment.uri]
    playlist.write_text("\n".join([*lines, "#EXT-X-ENDLIST"]))
    measured = measure(playlist)
    assert measured.segments == 4
    assert measured.bandwidth == 120_000
    assert measured.average_bandwidth == round(220_000 * 8 / 18.5)


def reference_waveform(samples: np.ndarray[Any, Any]) -> list[int]:
    """audiowaveform's algorithm, written plainly: 16-bit samples, integer channel mean,
    min/max per 256, divided by 256 toward zero."""
    pcm = np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int64)
    mono = np.trunc(pcm.sum(axis=0) / pcm.shape[0]).astype(np.int64)
    data = []
    for start in range(0, len(mono), 256):
        block = mono[start : start + 256]
        data += [int(np.trunc(block.min() / 256)), int(np.trunc(block.max() / 256))]
    return data


def test_waveform_files(runs: dict[str, Run]) -> None:
    r = runs["flac_stereo_128bpm"]
    body = json.loads((r.out / r.result.waveform_json).read_text())
    count = math.ceil(r.samples.shape[1] / 256)
    assert {k: v for k, v in body.items() if k != "data"} == {
        "version": 2,
        "channels": 1,
        "sample_rate": 44_100,
        "samples_per_pixel": 256,
        "bits": 8,
        "length": count,
    }
    assert r.result.waveform_points == count
    assert len(body["data"]) == 2 * count
    # The source is 16-bit FLAC: its samples are exact, so the peaks must be too.
    assert body["data"] == reference_waveform(r.samples)
    dat = (r.out / r.result.waveform_dat).read_bytes()
    assert dat[:24] == np.array([2, 1, 44_100, 256, count, 1], "<i4").tobytes()
    assert read_dat(dat).data.tolist() == body["data"]


@pytest.mark.parametrize("name", ["flac_stereo_128bpm", "mp3_mono_48k"])
def test_loudness_agrees_with_pyloudnorm(name: str, runs: dict[str, Run]) -> None:
    r = runs[name]
    loudness = r.result.loudness
    expected = pyloudnorm.Meter(r.rate).integrated_loudness(r.samples.T.astype(np.float64))
    assert loudness.integrated_lufs is not None
    assert loudness.integrated_lufs == pytest.approx(expected, abs=1.0)
    assert loudness.replaygain_track_gain_db == pytest.approx(-18 - loudness.integrated_lufs)
    # True peak: at least the sample peak, and oversampling adds little to this material.
    sample_peak = float(np.abs(r.samples).max())
    assert loudness.true_peak_dbtp is not None
    assert 20 * math.log10(sample_peak) - 0.05 <= loudness.true_peak_dbtp
    assert loudness.true_peak_dbtp <= 20 * math.log10(sample_peak) + 1.0
    assert loudness.replaygain_track_peak == pytest.approx(
        10 ** (loudness.true_peak_dbtp / 20), rel=0.01
    )


def test_tempo(runs: dict[str, Run]) -> None:
    assert runs["flac_stereo_128bpm"].result.bpm == pytest.approx(128, rel=0.02)
    assert runs["mp3_mono_48k"].result.bpm is None  # a chord and noise: no beat


@pytest.mark.parametrize("name", ["flac_stereo_128bpm", "mp3_mono_48k"])
def test_progress_and_result_shape(name: str, runs: dict[str, Run]) -> None:
    r = runs[name]
    assert r.calls[-1] == 1.0
    assert r.calls == sorted(r.calls)
    assert 5 <= len(r.calls) <= 101
    assert all(0 < c < 1 for c in r.calls[:-1])
    assert r.result.duration == pytest.approx(r.samples.shape[1] / r.rate, abs=0.03)
    body = r.result.to_dict()
    assert json.loads(json.dumps(body)) == body
    assert len(body["variants"]) == 4 and body["variants"][0]["playlist"] == "aac_64/index.m3u8"
    assert pickle.loads(pickle.dumps(r.result)) == r.result  # noqa: S301 - our own bytes


def test_silence_surround_source(tmp_path: Path, kit: Any) -> None:
    """Six channels of silence: downmixed to stereo; no loudness, no tempo, still playable."""
    silence = np.zeros((6, 44_100 * 3), dtype=np.float32)
    source = kit.write_audio(tmp_path / "silence.wav", silence, "wav", "pcm_s16le", 44_100)
    result = process(source, tmp_path / "out", lambda _: None)
    assert result.loudness.integrated_lufs is None
    assert result.loudness.replaygain_track_gain_db is None
    assert result.loudness.true_peak_dbtp is None
    assert result.bpm is None
    for variant in result.variants:
        with av.open(io.BytesIO(concatenated(tmp_path / "out" / variant.playlist))) as container:
            assert container.streams.audio[0].codec_context.channels == 2
    data = json.loads((tmp_path / "out" / result.waveform_json).read_text())["data"]
    assert set(data) == {0}


def test_damaged_source_is_invalid(sample_files: dict[str, Path], tmp_path: Path) -> None:
    flac = sample_files["flac"].read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(flac[: len(flac) // 2])
    with pytest.raises(InvalidInput) as caught:
        process(cut, tmp_path / "out", lambda _: None)
    assert caught.value.code == "invalid_audio"


def test_mp3_download(sample_files: dict[str, Path], tmp_path: Path, kit: Any) -> None:
    dest = tmp_path / "download.mp3"
    calls: list[float] = []
    transcode_mp3(sample_files["ogg_opus"], dest, progress=calls.append, tags={"title": "Miaou"})
    assert calls[-1] == 1.0
    with av.open(str(dest)) as container:
        assert container.format.name == "mp3"
        context = container.streams.audio[0].codec_context
        assert (context.sample_rate, context.channels, context.bit_rate) == (48_000, 2, 320_000)
        assert container.metadata.get("title") == "Miaou"
    decoded, rate = kit.decode_all(dest)
    assert decoded.shape[1] / rate == pytest.approx(5.0, abs=0.06)
    assert rms(decoded) > 0.05
