"""Pure rules of the job queue (miaou.jobs.rules): backoff, retry or not, stored error text."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MiaouError,
    NotFound,
    RateLimited,
    Unavailable,
)
from miaou.jobs import rules
from miaou.jobs.processes import ProcessDied


class Fixed(random.Random):
    """A generator whose every draw is ``value``: the jitter's extremes, exactly."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def random(self) -> float:
        return self.value


def test_backoff_doubles_from_ten_seconds_up_to_fifteen_minutes() -> None:
    no_jitter = Fixed(0.0)
    delays = [rules.backoff_ms(attempt, no_jitter) for attempt in range(1, 10)]
    assert delays == [10_000, 20_000, 40_000, 80_000, 160_000, 320_000, 640_000, 900_000, 900_000]


def test_jitter_shortens_by_at_most_a_quarter() -> None:
    assert rules.backoff_ms(1, Fixed(0.999999)) == 7_500
    assert rules.backoff_ms(30, Fixed(0.999999)) == 675_000


@given(st.integers(1, 10_000), st.integers(0, 2**32))
def test_backoff_stays_within_its_bounds(attempt: int, seed: int) -> None:
    delay = rules.backoff_ms(attempt, random.Random(seed))
    ceiling = min(rules.BACKOFF_CAP_MS, rules.BACKOFF_BASE_MS * 2 ** min(attempt - 1, 40))
    assert ceiling * (1 - rules.BACKOFF_JITTER) <= delay <= ceiling


@given(st.integers(1, 60), st.floats(0, 1, exclude_max=True))
def test_backoff_never_shrinks_as_attempts_grow(attempt: int, draw: float) -> None:
    rng = Fixed(draw)
    assert rules.backoff_ms(attempt + 1, rng) >= rules.backoff_ms(attempt, rng)


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        rules.backoff_ms(attempt, random.Random(0))


@pytest.mark.parametrize(
    "exc",
    [InvalidInput("not audio"), NotFound(), Forbidden(), Conflict()],
    ids=lambda e: type(e).__name__,
)
def test_errors_the_same_input_meets_again_are_not_retried(exc: Exception) -> None:
    assert not rules.retryable(exc)


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("boom"),
        OSError("disk full"),
        Unavailable(),
        RateLimited(3.0),
        MiaouError(),
        ProcessDied("killed by SIGKILL"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_transient_and_unexpected_errors_are_retried(exc: Exception) -> None:
    assert rules.retryable(exc)


def test_described_errors_keep_code_message_and_field_errors() -> None:
    exc = InvalidInput("Not an audio file.", code="unsupported_audio", errors={"file": ["mp4"]})
    assert rules.describe(exc) == 'unsupported_audio: Not an audio file. {"file":["mp4"]}'
    assert rules.describe(NotFound("No such track.")) == "not_found: No such track."
    assert rules.describe(RuntimeError("boom")) == "RuntimeError: boom"
    assert rules.describe(TimeoutError()) == "TimeoutError"


@given(st.text(max_size=3000), st.integers(2, 2500))
def test_bounded_errors_fit_and_keep_their_start(text: str, limit: int) -> None:
    bounded = rules.bound_error(text, limit)
    assert len(bounded) <= limit
    assert "\x00" not in bounded
    clean = text.replace("\x00", "\ufffd")
    if len(clean) <= limit:
        assert bounded == clean
    else:
        assert bounded == clean[: limit - 1] + "\u2026"


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_progress_is_clamped_to_a_fraction(value: float) -> None:
    clamped = rules.clamp_progress(value)
    assert 0.0 <= clamped <= 1.0
    if math.isnan(value):
        assert clamped == 0.0
    elif 0.0 <= value <= 1.0:
        assert clamped == value
