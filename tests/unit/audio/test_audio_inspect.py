"""inspect(): accepted formats are recognised from their content; bad files get the right code."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from miaou.audio.pipeline.inspect import SourceInfo, inspect
from miaou.audio.pipeline.source import open_audio
from miaou.errors import InvalidInput

CODECS = {
    "mp3": "mp3",
    "wav": "pcm_s16le",
    "flac": "flac",
    "aiff": "pcm_s16be",
    "ogg_vorbis": "vorbis",
    "ogg_opus": "opus",
    "m4a": "aac",
}
LOSSLESS = {"wav", "flac", "aiff"}


def refused(path: Path, max_duration: float = 600) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        inspect(path, max_duration=max_duration)
    assert caught.value.status == 400
    assert caught.value.errors["file"]  # the shape the HTTP layer sends
    return caught.value


@pytest.mark.parametrize("name", sorted(CODECS))
def test_accepts_each_format_from_its_content(
    name: str, sample_files: dict[str, Path], kit: Any
) -> None:
    info = inspect(sample_files[name], max_duration=600)
    assert isinstance(info, SourceInfo)
    assert info.container == kit.containers[name]
    assert info.codec == CODECS[name]
    # Decoded length: lossy codecs add at most a frame of padding.
    assert info.duration == pytest.approx(5.0, abs=0.03)
    assert info.sample_rate == kit.formats[name][2]
    assert info.channels == 2
    assert info.lossless is (name in LOSSLESS)
    assert info.bit_rate is None or info.bit_rate > 0


def test_a_wav_named_mp3_is_a_wav(sample_files: dict[str, Path], tmp_path: Path) -> None:
    renamed = tmp_path / "song.mp3"
    renamed.write_bytes(sample_files["wav"].read_bytes())
    assert inspect(renamed, max_duration=600).container == "wav"


def test_ffmpeg_never_sees_the_file_name(sample_files: dict[str, Path], tmp_path: Path) -> None:
    """FFmpeg's prober weighs a name's extension; ours gets an unnamed file object."""
    named = tmp_path / "song.mp3"
    named.write_bytes(sample_files["flac"].read_bytes())
    with open_audio(named) as source:
        assert source.container.name == "<none>"
        assert source.kind == "flac"


def test_text_named_mp3_is_unsupported(tmp_path: Path) -> None:
    text = tmp_path / "song.mp3"
    text.write_text("ID3? No: just some words about a song.\n" * 200)
    assert refused(text).code == "unsupported_audio"


def test_random_bytes_are_unsupported(tmp_path: Path) -> None:
    # Opened by name, FFmpeg takes these bytes for an MP3 (the extension tips its prober).
    noise = tmp_path / "noise.mp3"
    data = np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes()
    noise.write_bytes(b"\x00" + data)  # not by chance an MPEG sync word
    assert refused(noise).code == "unsupported_audio"


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert refused(empty).code == "empty_file"


@pytest.mark.parametrize("name", sorted(CODECS))
def test_cut_files_are_invalid(name: str, sample_files: dict[str, Path], tmp_path: Path) -> None:
    whole = sample_files[name].read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) // 2])
    assert refused(cut).code == "invalid_audio"


def test_wav_header_claiming_hours_is_invalid(
    sample_files: dict[str, Path], tmp_path: Path
) -> None:
    wav = bytearray(sample_files["wav"].read_bytes())
    data = wav.find(b"data")
    wav[data + 4 : data + 8] = struct.pack("<I", 44_100 * 4 * 3600 * 3)  # three hours
    wav[4:8] = struct.pack("<I", 0xFFFFFFF0)
    crafted = tmp_path / "claims.wav"
    crafted.write_bytes(wav)
    assert refused(crafted, max_duration=4 * 3600).code == "invalid_audio"


def test_wav_written_to_a_pipe_is_accepted(sample_files: dict[str, Path], tmp_path: Path) -> None:
    """No data size (0xFFFFFFFF: "to the end of the file") is not a claim of hours."""
    wav = bytearray(sample_files["wav"].read_bytes())
    data = wav.find(b"data")
    wav[data + 4 : data + 8] = wav[4:8] = b"\xff\xff\xff\xff"
    piped = tmp_path / "piped.wav"
    piped.write_bytes(wav)
    assert inspect(piped, max_duration=60).duration == pytest.approx(5.0)


def test_too_long_by_decoding(sample_files: dict[str, Path]) -> None:
    assert refused(sample_files["flac"], max_duration=4.0).code == "audio_too_long"
    assert refused(sample_files["ogg_opus"], max_duration=4.9).code == "audio_too_long"
    assert inspect(sample_files["flac"], max_duration=5.0).duration == pytest.approx(5.0)


def test_declared_length_is_refused_before_decoding(
    sample_files: dict[str, Path], tmp_path: Path
) -> None:
    """A FLAC whose STREAMINFO claims four hours: the claim alone refuses it as too long
    (decoding would have found it cut short: invalid_audio)."""
    flac = bytearray(sample_files["flac"].read_bytes())
    # STREAMINFO starts at 8; total samples are the low 36 bits of bytes 21..25.
    packed = int.from_bytes(flac[21:26], "big")
    packed = (packed & ~((1 << 36) - 1)) | (44_100 * 4 * 3600)
    flac[21:26] = packed.to_bytes(5, "big")
    crafted = tmp_path / "long.flac"
    crafted.write_bytes(flac)
    assert refused(crafted, max_duration=3 * 3600).code == "audio_too_long"
    assert refused(crafted, max_duration=5 * 3600).code == "invalid_audio"


@pytest.mark.parametrize(
    ("muxer", "encoder", "rate"),
    [
        ("matroska", "libopus", 48_000),  # Opus, but in Matroska
        ("wav", "libmp3lame", 44_100),  # a WAV holding MP3, not PCM
        ("adts", "aac", 44_100),  # raw AAC, no MP4 around it
    ],
)
def test_accepted_codecs_in_other_containers_are_unsupported(
    muxer: str, encoder: str, rate: int, tmp_path: Path, kit: Any
) -> None:
    path = kit.write_audio(tmp_path / "other", kit.tone_and_noise(1, rate), muxer, encoder, rate)
    assert refused(path).code == "unsupported_audio"


def test_mono_and_unusual_rates(tmp_path: Path, kit: Any) -> None:
    mono = kit.write_audio(
        tmp_path / "mono", kit.tone_and_noise(2, 22_050, channels=1), "wav", "pcm_s16le", 22_050
    )
    info = inspect(mono, max_duration=60)
    assert (info.channels, info.sample_rate) == (1, 22_050)
    assert info.duration == pytest.approx(2.0)
