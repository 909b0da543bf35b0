"""Pure rules of the job queue: retry delays, what is worth a retry, bounded error text.

Kept apart from the storage code so they are tested as plain functions (tests/unit).
"""

from __future__ import annotations

import math
import random

import msgspec

from miaou.errors import (
    ConfigError,
    Conflict,
    Forbidden,
    InvalidInput,
    MiaouError,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
)

BACKOFF_BASE_MS = 10_000
BACKOFF_CAP_MS = 15 * 60_000
# A delay is shortened by up to this fraction, at random: jobs that failed together (a
# database outage) do not all come back in the same millisecond.
BACKOFF_JITTER = 0.25
# Errors are stored and shown to users; a traceback-sized message is cut to this.
MAX_ERROR = 2000

# Failures that the same input will meet again: retrying only delays the verdict. Anything
# else (Unavailable, RateLimited, a crashed process, an unexpected exception) is retried.
PERMANENT: tuple[type[MiaouError], ...] = (
    InvalidInput,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    PayloadTooLarge,
    ConfigError,
)


def backoff_ms(attempt: int, rng: random.Random) -> int:
    """The wait before the retry that follows failed attempt number ``attempt`` (from 1):
    10 s, 20 s, 40 s, ... doubling up to 15 min, each shortened by up to 25 % at random."""
    if attempt < 1:
        raise ValueError(f"attempt counts from 1, got {attempt}")
    delay = min(BACKOFF_CAP_MS, BACKOFF_BASE_MS << min(attempt - 1, 32))
    return round(delay * (1.0 - BACKOFF_JITTER * rng.random()))


def retryable(exc: BaseException) -> bool:
    """Whether a job that failed with ``exc`` may succeed if run again."""
    return not isinstance(exc, PERMANENT)


def describe(exc: BaseException) -> str:
    """The error text stored on a failed job: the stable code and message for our errors
    (with field errors), the exception type and message for anything else."""
    if isinstance(exc, MiaouError):
        text = f"{exc.code}: {exc.message}"
        if exc.errors:
            text += " " + msgspec.json.encode(exc.errors).decode()
        return text
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def bound_error(text: str, limit: int = MAX_ERROR) -> str:
    """``text`` cut to ``limit`` characters (marked with an ellipsis), without NUL characters,
    which PostgreSQL's text type refuses."""
    text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def clamp_progress(fraction: float) -> float:
    """A progress fraction within 0..1 (a NaN from a careless division counts as 0)."""
    if math.isnan(fraction):
        return 0.0
    return min(1.0, max(0.0, float(fraction)))
