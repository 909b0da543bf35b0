"""Pure rules of the audio wing: who may see a track, signed media tokens, play counting,
media file names and their cache headers."""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from miaou.audio import media_files, playback, plays
from miaou.audio.models import (
    TrackAccess,
    can_see,
    check_media_token,
    is_listed,
    is_released,
    media_signature,
    media_token,
)
from miaou.errors import InvalidInput, NotFound

OWNER, OTHER, SHARED = 1, 2, 3
NOW = 1_800_000_000_000
PAST, FUTURE = NOW - 1, NOW + 60_000
SECRET = "s3cr3t"


# -- visibility -----------------------------------------------------------------------------
# Written out rather than computed: the table is the specification. Columns: viewer,
# visibility, released, secret presented ("right", "wrong", None), expected.
def _matrix() -> list[tuple[str, str, bool, str | None, bool]]:
    rows: list[tuple[str, str, bool, str | None, bool]] = []
    for secret in ("right", "wrong", None):
        for released in (True, False):
            for visibility in ("public", "unlisted", "private"):
                rows.append(("owner", visibility, released, secret, True))
        rows += [
            ("anonymous", "public", True, secret, True),
            ("other", "public", True, secret, True),
            ("shared", "public", True, secret, True),
            ("anonymous", "unlisted", True, secret, secret == "right"),
            ("other", "unlisted", True, secret, secret == "right"),
            # Sharing is for private tracks; an unlisted one still needs its link.
            ("shared", "unlisted", True, secret, secret == "right"),
            ("anonymous", "private", True, secret, False),
            ("other", "private", True, secret, False),
            ("shared", "private", True, secret, True),
        ]
        # Before its release time a track is its owner's alone, whatever else holds.
        for viewer in ("anonymous", "other", "shared"):
            for visibility in ("public", "unlisted", "private"):
                rows.append((viewer, visibility, False, secret, False))
    return rows


VIEWERS = {"owner": OWNER, "anonymous": None, "other": OTHER, "shared": SHARED}


@pytest.mark.parametrize(("viewer", "visibility", "released", "secret", "expected"), _matrix())
def test_visibility_matrix(
    viewer: str, visibility: str, released: bool, secret: str | None, expected: bool
) -> None:
    track = TrackAccess(OWNER, visibility, SECRET, PAST if released else FUTURE)
    presented = {"right": SECRET, "wrong": "nope", None: None}[secret]
    who = VIEWERS[viewer]
    assert can_see(track, who, NOW, secret=presented, shared=who == SHARED) is expected


def test_matrix_covers_every_case() -> None:
    cases = {(v, vis, rel, s) for v, vis, rel, s, _ in _matrix()}
    assert len(cases) == len(_matrix()) == 4 * 3 * 2 * 3


def test_release_time_boundary_and_listing() -> None:
    track = TrackAccess(OWNER, "public", SECRET, NOW)
    assert is_released(track, NOW) and not is_released(track, NOW - 1)
    assert is_released(TrackAccess(OWNER, "public", SECRET, None), 0)
    assert is_listed(track, NOW) and not is_listed(track, NOW - 1)
    assert not is_listed(TrackAccess(OWNER, "unlisted", SECRET, None), NOW)


# -- signed media tokens --------------------------------------------------------------------
KEY = b"k" * 32
TRACK = 123_456_789


def test_token_round_trip_and_expiry_boundary() -> None:
    token = media_token(KEY, TRACK, 3, 1000)
    assert check_media_token(KEY, TRACK, token, 999) == 3
    assert check_media_token(KEY, TRACK, token, 1000) == 3  # valid through its last second
    assert check_media_token(KEY, TRACK, token, 1001) is None


def test_tampering_with_any_field_is_refused() -> None:
    version, expires, signature = media_token(KEY, TRACK, 3, 1000).split(".")
    forged = [
        f"4.{expires}.{signature}",  # another version
        f"{version}.9999.{signature}",  # a later expiry
        f"{version}.{expires}.{'0' * 32}",  # another signature
        f"{version}.{expires}.{signature[:-1]}{'a' if signature[-1] != 'a' else 'b'}",
        f"{version}.{expires}.{signature.upper()}",
        f"{version}.{expires}",
        f"{version}.{expires}.{signature}.x",
        f"-{version}.{expires}.{signature}",
        "",
    ]
    for token in forged:
        assert check_media_token(KEY, TRACK, token, 0) is None, token
    genuine = f"{version}.{expires}.{signature}"
    assert check_media_token(KEY, TRACK + 1, genuine, 0) is None  # another track
    assert check_media_token(b"x" * 32, TRACK, genuine, 0) is None  # another node's key


def test_non_ascii_digits_are_refused_not_crashing() -> None:
    assert check_media_token(KEY, TRACK, "².1000.abc", 0) is None


def test_a_non_ascii_secret_is_wrong_not_crashing() -> None:
    track = TrackAccess(OWNER, "unlisted", SECRET, None)
    assert not can_see(track, None, NOW, secret="clé", shared=False)


def test_playback_screens_tokens_before_checking_them() -> None:
    """The routes match tokens with ASCII, bounded patterns first: what reaches
    check_media_token parses, and huge numbers never reach int()."""
    assert playback._SIGNED.fullmatch(media_token(KEY, TRACK, 3, 1000))
    for bad in ("².1000." + "a" * 32, "1." + "9" * 5000 + "." + "a" * 32, "1.2.xyz"):
        assert playback._SIGNED.fullmatch(bad) is None
    assert playback._VERSION.fullmatch("12") and not playback._VERSION.fullmatch("١٢")


@given(
    st.integers(1, 2**63 - 1), st.integers(0, 2**31), st.integers(0, 2**40), st.integers(0, 2**40)
)
def test_token_property(track_id: int, version: int, expires: int, now: int) -> None:
    token = media_token(KEY, track_id, version, expires)
    assert check_media_token(KEY, track_id, token, now) == (version if now <= expires else None)


@given(st.integers(0, 2**31), st.integers(0, 2**40), st.integers(0, 2**31), st.integers(0, 2**40))
def test_a_signature_grants_only_what_it_signed(v: int, e: int, v2: int, e2: int) -> None:
    assume((v, e) != (v2, e2))
    signature = media_signature(KEY, TRACK, v, e)
    assert check_media_token(KEY, TRACK, f"{v2}.{e2}.{signature}", 0) is None


def test_signed_expiry_is_at_least_the_lifetime_and_on_a_step() -> None:
    for now in (0, 1, 299, 300, 1_800_000_123):
        expires = playback.signed_expiry(now, 3600)
        assert now + 3600 <= expires < now + 3600 + playback.EXPIRY_STEP_S
        assert expires % playback.EXPIRY_STEP_S == 0


# -- play counting --------------------------------------------------------------------------
WINDOW = plays.WINDOW_MS


def test_play_count_rule_examples() -> None:
    assert not plays.play_counts(29.999, None, NOW)
    assert plays.play_counts(30, None, NOW)
    assert not plays.play_counts(300, NOW - WINDOW + 1, NOW)
    assert plays.play_counts(30, NOW - WINDOW, NOW)
    assert not plays.play_counts(math.nan, None, NOW)


@given(st.floats(allow_nan=False), st.none() | st.integers(0, 2**42), st.integers(0, 2**42))
def test_play_count_property(seconds: float, last: int | None, now: int) -> None:
    expected = seconds >= 30 and (last is None or now - last >= 30 * 60 * 1000)
    assert plays.play_counts(seconds, last, now) is expected
    if expected:  # more listening, or later, still counts
        assert plays.play_counts(seconds + 1, last, now)
        assert plays.play_counts(seconds, last, now + 1)


def test_listened_seconds_bounds() -> None:
    duration_ms = 200_000
    assert plays.listened_is_valid(0, duration_ms)
    assert plays.listened_is_valid(260, duration_ms)
    assert not plays.listened_is_valid(260.001, duration_ms)
    assert not plays.listened_is_valid(-0.5, duration_ms)
    for bad in (math.inf, -math.inf, math.nan):
        assert not plays.listened_is_valid(bad, duration_ms)


def test_days_and_anonymous_listeners() -> None:
    assert plays.day_of(0) == 0 and plays.day_of(86_399_999) == 0 and plays.day_of(86_400_000)
    one = plays.anonymous_listener(KEY, "192.0.2.1")
    assert one == plays.anonymous_listener(KEY, "192.0.2.1")
    assert one != plays.anonymous_listener(KEY, "192.0.2.2")
    assert one != plays.anonymous_listener(b"y" * 32, "192.0.2.1")
    assert one.startswith("a:") and len(one) <= 64 and "192" not in one


def test_stats_range() -> None:
    today = date(2026, 12, 3)
    assert plays.stats_range(None, None, today) == (date(2026, 11, 4), today)
    assert plays.stats_range("2026-01-01", "2026-12-31", today) == (
        date(2026, 1, 1),
        date(2026, 12, 31),
    )
    assert plays.stats_range("2024-01-01", "2024-12-31", today)[0] == date(2024, 1, 1)  # 366
    for first, last in (("2024-01-01", "2025-01-01"), ("2026-12-04", "2026-12-03")):
        with pytest.raises(InvalidInput):
            plays.stats_range(first, last, today)
    with pytest.raises(InvalidInput) as caught:
        plays.stats_range("yesterday", "soon", today)
    assert set(caught.value.errors) == {"from", "to"}


# -- media file names -----------------------------------------------------------------------
def test_hls_names_and_types() -> None:
    assert media_files.hls_name("/master.m3u8") == "master.m3u8"
    assert media_files.hls_name("/aac_128/seg_00000.m4s") == "aac_128/seg_00000.m4s"
    for bad in ("/", "/progressive.m4a", "/waveform.json", "/a//b.m4s", "/x" * 100 + ".m4s"):
        with pytest.raises(NotFound):
            media_files.hls_name(bad)
    assert media_files.content_type("aac_64/index.m3u8") == "application/vnd.apple.mpegurl"
    assert media_files.content_type("aac_64/init.mp4") == "audio/mp4"
    assert media_files.content_type("progressive.m4a") == "audio/mp4"
    assert media_files.content_type("waveform.dat") == "application/octet-stream"
    assert media_files.download_name('aac/se"g.m4s') == "se_g.m4s"


def test_cache_control() -> None:
    cc = media_files.cache_control
    assert cc("a/seg_00001.m4s", pinned=True, seconds_left=None) == (
        "public, max-age=31536000, immutable"
    )
    assert cc("a/seg_00001.m4s", pinned=False, seconds_left=None) == "public, max-age=300"
    assert cc("master.m3u8", pinned=True, seconds_left=None) == "public, max-age=300"
    assert cc("a/init.mp4", pinned=True, seconds_left=120) == "private, max-age=120, immutable"
    assert cc("waveform.json", pinned=True, seconds_left=120) == "private, max-age=120"
    assert cc("master.m3u8", pinned=True, seconds_left=-5) == "private, max-age=0"
