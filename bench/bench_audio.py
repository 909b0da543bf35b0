"""The audio pipeline on a three-minute track, beside the ffmpeg CLI making the same ladder.

Generates a 3-minute stereo 44.1 kHz track (chords, bass, a 124 BPM kick and hi-hat, a
noise floor; peaks near -3 dBFS) saved as FLAC, then, in this process, times:

- ``process()``: the whole pipeline, one decode feeding loudness, waveform, tempo, the four
  HLS renditions (AAC 64/128/256, Opus 128, fMP4 6 s) and the progressive AAC file;
- ``encode_ladder()``: the same renditions and progressive file, without the analysis;

and, if ``ffmpeg`` is on PATH, the CLI making the same ladder in one command:

- the usual way: five encodes (four renditions, and the progressive file encoded again);
- the same work as ours: four encodes, the 128 kb/s one written to both the rendition and
  the progressive file through the ``tee`` muxer.

CPU is ``getrusage`` user + system: RUSAGE_SELF around our calls, RUSAGE_CHILDREN around
ffmpeg's. The machine may be shared: each row is run MIAOU_BENCH_AUDIO_REPEAT times
(default 3), alternating, and the run with the least CPU is shown. Note that PyAV bundles
its own FFmpeg build while the CLI is the system's: the encoders' versions can differ.

    python -m bench audio      # MIAOU_BENCH_AUDIO_SECONDS=60 for a shorter track
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from miaou.audio.pipeline import hls
from miaou.audio.pipeline.ladder import LADDER, encode_ladder
from miaou.audio.pipeline.process import process

SECONDS = float(os.environ.get("MIAOU_BENCH_AUDIO_SECONDS", "180"))
REPEAT = int(os.environ.get("MIAOU_BENCH_AUDIO_REPEAT", "3"))
RATE = 44_100
BPM = 124.0


def music(seconds: float, rate: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Stereo, music-like: a chord every two bars, bass, kick and hi-hat, a noise floor."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    beat = 60 / BPM
    chords = [(220.0, 277.18, 329.63), (196.0, 246.94, 293.66), (174.61, 220.0, 261.63)]
    index = (t // (8 * beat)).astype(int) % len(chords)
    left, right = np.zeros_like(t), np.zeros_like(t)
    for n, chord in enumerate(chords):
        active = index == n
        for k, f in enumerate(chord):
            left[active] += 0.08 * np.sin(2 * np.pi * f * t[active] + k)
            right[active] += 0.08 * np.sin(2 * np.pi * f * 1.002 * t[active] + 2 * k)
        bass = 0.15 * np.sin(2 * np.pi * chord[0] / 2 * t[active])
        left[active] += bass
        right[active] += bass
    since_beat = np.mod(t, beat)
    kick = 0.35 * np.sin(2 * np.pi * (50 + 80 * np.exp(-since_beat / 0.03)) * since_beat)
    kick *= np.exp(-since_beat / 0.12)
    since_hat = np.mod(t - beat / 2, beat)
    hat = 0.08 * rng.standard_normal(len(t)) * np.exp(-since_hat / 0.02)
    floor = 0.01 * rng.standard_normal((2, len(t)))
    stereo = np.stack((left + kick + hat, right + kick + 0.9 * hat)) + floor
    return (stereo * (0.7 / np.abs(stereo).max())).astype(np.float32)


def write_flac(path: Path, signal: npt.NDArray[np.float32]) -> None:
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=RATE, layout="stereo")
        for start in range(0, signal.shape[1], 8192):
            chunk = np.ascontiguousarray(signal[:, start : start + 8192])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts, frame.time_base = RATE, start, Fraction(1, RATE)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@dataclass(frozen=True)
class Timing:
    cpu: float
    wall: float


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed_here(work: Callable[[], object]) -> Timing:
    cpu, wall = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    work()
    return Timing(_cpu(resource.RUSAGE_SELF) - cpu, time.perf_counter() - wall)


def timed_child(command: list[str]) -> Timing:
    cpu, wall = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(command, check=True)
    return Timing(_cpu(resource.RUSAGE_CHILDREN) - cpu, time.perf_counter() - wall)


def ffmpeg_ladder(ffmpeg: str, source: Path, out: Path, *, tee: bool) -> list[str]:
    """One ffmpeg command making our renditions and progressive file."""
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(source)]
    progressive = out / "progressive.m4a"
    for rendition in LADDER:
        directory = out / rendition.name
        directory.mkdir(parents=True)
        options = hls.muxer_options(directory)
        rate = "48000" if rendition.encoder == "libopus" else str(RATE)
        command += ["-map", "0:a", "-c:a", rendition.encoder, "-b:a", str(rendition.bitrate)]
        command += ["-ar", rate, "-ac", "2"]
        playlist = directory / hls.PLAYLIST
        if tee and rendition.name == "aac_128":
            slave = ":".join(f"{k}={v}" for k, v in options.items())
            both = f"[f=hls:{slave}]{playlist}|[f=ipod:movflags=+faststart]{progressive}"
            command += ["-f", "tee", both]
            continue
        for key, value in options.items():
            command += [f"-{key}", value]
        command += ["-f", "hls", str(playlist)]
    if not tee:
        command += ["-map", "0:a", "-c:a", "aac", "-b:a", "128000", "-movflags", "+faststart"]
        command += [str(progressive)]
    return command


def fresh(directory: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    return directory


async def main(argv: list[str]) -> None:
    ffmpeg = shutil.which("ffmpeg")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source = work / "track.flac"
        write_flac(source, music(SECONDS, RATE))
        runs: dict[str, Callable[[], Timing]] = {
            "process() (all)": lambda: timed_here(
                lambda: process(source, fresh(work / "ours"), lambda _: None)
            ),
            "encode_ladder()": lambda: timed_here(
                lambda: encode_ladder(source, fresh(work / "ladder"))
            ),
        }
        if ffmpeg:
            runs["ffmpeg CLI, 5 encodes"] = lambda: timed_child(
                ffmpeg_ladder(ffmpeg, source, fresh(work / "cli"), tee=False)
            )
            runs["ffmpeg CLI, 4 + tee"] = lambda: timed_child(
                ffmpeg_ladder(ffmpeg, source, fresh(work / "cli_tee"), tee=True)
            )
        best: dict[str, Timing] = {}
        for _ in range(REPEAT):
            for name, run in runs.items():
                timing = run()
                if name not in best or timing.cpu < best[name].cpu:
                    best[name] = timing
        result = process(source, fresh(work / "ours"), lambda _: None)
    version = "not found on PATH" if not ffmpeg else _ffmpeg_version(ffmpeg)
    print(f"{SECONDS:.0f} s stereo 44.1 kHz FLAC; best of {REPEAT}; "
          f"PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info}); CLI: {version}")  # fmt: skip
    print(f"ladder: {', '.join(f'{r.name} {r.bitrate // 1000}k' for r in LADDER)}, "
          f"HLS fMP4 {hls.SEGMENT_SECONDS} s, + progressive AAC 128k")  # fmt: skip
    print(f"{'run':<24}{'CPU s':>8}{'wall s':>8}{'audio s/CPU s':>15}")
    for name, timing in best.items():
        print(f"{name:<24}{timing.cpu:>8.2f}{timing.wall:>8.2f}{SECONDS / timing.cpu:>15.1f}")
    if ffmpeg:
        ladder = best["encode_ladder()"].cpu
        for name in ("ffmpeg CLI, 5 encodes", "ffmpeg CLI, 4 + tee"):
            print(f"ladder speed vs {name}: {best[name].cpu / ladder:.2f}x")
    print(f"(process(): {result.loudness.integrated_lufs} LUFS, {result.bpm} BPM, "
          f"{result.waveform_points} waveform points)")  # fmt: skip


def _ffmpeg_version(ffmpeg: str) -> str:
    first = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=False)
    return " ".join(first.stdout.split()[:3])


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
