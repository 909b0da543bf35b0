"""Structured logging for Miaou, built on structlog.

Both structlog loggers and plain stdlib loggers (uvicorn, SQLAlchemy, ...) end up in one
handler on the root logger, rendered by one renderer: JSON lines for machines (not a TTY),
a coloured console for humans (a TTY). Every event goes through :func:`redact_secrets`
first, so credentials never reach the output whatever a caller passes.

For uvicorn, run it with ``log_config=None`` (else it installs handlers of its own that
bypass ours) and ``access_log=False`` (our middleware writes the access log, without the
query string).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from miaou.errors import ConfigError

REDACTED = "***"

# Substring match on the lower-cased key: also catches access_token, new_password,
# set-cookie, x-api-key, client_secret, proxy-authorization, ...
_SECRET_KEY = re.compile(r"pass(word|wd)|token|secret|authorization|cookie|api[-_]?key", re.I)

# Nesting deeper than this is cut rather than walked: guards against cycles and huge payloads.
_MAX_DEPTH = 8

_LEVELS = {"debug", "info", "warning", "error", "critical"}

# The handler configure_logging installed last, so a second call replaces it instead of
# adding a duplicate (and leaves foreign handlers such as pytest's alone).
_handler: logging.Handler | None = None


def _is_secret_key(key: object) -> bool:
    if isinstance(key, bytes):
        key = key.decode("latin-1")
    return isinstance(key, str) and _SECRET_KEY.search(key) is not None


def _redact(value: Any, depth: int) -> Any:
    """A copy of ``value`` with secret-named entries masked; the input is never mutated."""
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {
            k: REDACTED if _is_secret_key(k) else _redact(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # ASGI-style header pairs: [(b"authorization", b"Bearer ..."), ...]
        if len(value) == 2 and _is_secret_key(value[0]) and isinstance(value[0], str | bytes):
            return (value[0], REDACTED)
        items = [_redact(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def redact_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor masking values of keys named like password, token, secret, ..."""
    return {k: REDACTED if _is_secret_key(k) else _redact(v, 1) for k, v in event_dict.items()}


def _shared_processors() -> list[Processor]:
    # Run for structlog events and, as foreign_pre_chain, for stdlib records alike.
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.StackInfoRenderer(),
        redact_secrets,
    ]


def _renderer(json: bool) -> list[Processor]:
    if json:
        return [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
    # ConsoleRenderer formats exc_info itself; plain tracebacks, because the rich formatter
    # prints local variables, and those can be passwords or tokens.
    return [structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback)]


def configure_logging(
    level: str = "info", json: bool | None = None, *, stream: TextIO | None = None
) -> None:
    """Configure structlog and stdlib logging; safe to call more than once.

    ``json=None`` picks JSON lines unless ``stream`` (default: stderr) is a TTY.
    Raises :class:`ConfigError` for an unknown level.
    """
    global _handler

    level_name = level.strip().lower()
    if level_name not in _LEVELS:
        raise ConfigError(f"Unknown log level {level!r}; use one of {sorted(_LEVELS)}.")
    numeric_level = logging.getLevelNamesMapping()[level_name.upper()]
    out = stream if stream is not None else sys.stderr
    if json is None:
        json = not (hasattr(out, "isatty") and out.isatty())

    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a later configure_logging() or structlog.testing.capture_logs() must
        # reach loggers created before it.
        cache_logger_on_first_use=False,
    )

    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *_renderer(json),
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    _handler = handler

    for logger_name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Route uvicorn through the root handler rather than its own formatters.
        uv = logging.getLogger(logger_name)
        uv.handlers.clear()
        uv.propagate = True
    # uvicorn's access lines carry the full query string (tokens may be there) and duplicate
    # the middleware's request log; only its warnings are kept.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # httpx logs every outgoing URL, query string included, at info.
    for logger_name in ("httpx", "httpcore"):
        logging.getLogger(logger_name).setLevel(logging.WARNING)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger whose events carry ``logger=name``."""
    return structlog.stdlib.get_logger(name)
