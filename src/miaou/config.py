"""One settings object, layered: defaults, then ``miaou.toml``, then ``MIAOU_*``, then flags.

Every layer is validated the same way (msgspec conversion of the merged mapping), so a typo in
any layer is an error that names the key, never a silently ignored setting. Environment
variables map to keys by lower-casing: ``MIAOU_DATABASE_URL`` -> ``database_url``; nested
tables use a double underscore: ``MIAOU_RATELIMIT__ENABLED`` -> ``ratelimit.enabled``.
``MIAOU_CONFIG`` names the file, and ``MIAOU_TEST_*`` belongs to the test suite; both are not
settings.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import msgspec
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from miaou.errors import ConfigError

RegistrationMode = Literal["open", "invite", "closed"]
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")
_NOT_SETTINGS = ("MIAOU_CONFIG", "MIAOU_TEST_")
# Files one message may carry (Discord's number).
MAX_ATTACHMENTS = 10


class RateLimitSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Rates are ``"COUNT/SECONDS"``: ``"10/60"`` allows a burst of 10, refilled over 60 s."""

    enabled: bool = True
    auth_per_ip: str = "10/60"
    api_per_ip: str = "300/10"
    api_per_user: str = "100/10"

    def parsed(self, name: str) -> tuple[int, float]:
        return parse_rate(getattr(self, name), f"ratelimit.{name}")


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./data"
    # Empty means embedded SQLite at <data_dir>/miaou.db.
    database_url: str = ""
    # Connections one process keeps to PostgreSQL (and as many again at peaks); with
    # --workers N they are divided among the workers, so N does not multiply them.
    database_pool_size: int = 10
    redis_url: str = ""
    # Prefix of every Redis key, so deployments (or test runs) can share one server.
    redis_namespace: str = "miaou"
    registration: RegistrationMode = "open"
    migrate_on_start: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # None: JSON when stderr is not a terminal.
    log_json: bool | None = None
    max_body_bytes: int = 1_048_576
    # One attachment's size cap; a multipart send may carry ten of them (see
    # ``max_upload_request_bytes``), while every other route keeps ``max_body_bytes``.
    max_attachment_bytes: int = 25 * 1_048_576
    # Empty means <data_dir>/media.
    media_dir: str = ""
    # Snowflake worker number; None derives one from the process id.
    worker_id: int | None = None
    # Use X-Forwarded-For for the client address (only behind a trusted proxy).
    trust_proxy: bool = False
    session_idle_days: int = 90
    max_sessions_per_user: int = 100
    # How long a node trusts a token it authenticated without asking the database again;
    # 0 disables the cache. Other nodes see a revoked token refused within this time.
    auth_cache_seconds: float = 10.0
    # argon2id cost; RFC 9106's second recommended profile by default.
    password_time_cost: int = 3
    password_memory_kib: int = 65_536
    # Gateway: the heartbeat interval clients are told; the unsent bytes a connection may
    # hold before it is cut off as a slow consumer; how long events stay resumable.
    gateway_heartbeat_ms: int = 41_250
    gateway_send_buffer_bytes: int = 1_048_576
    resume_window_seconds: int = 3600
    # Audio: one track upload's size and duration caps.
    max_track_bytes: int = 500 * 1_048_576
    max_track_seconds: int = 3 * 3600
    # What one user may keep: tracks, and bytes of their original uploads (0: no limit).
    track_quota_count: int = 1000
    track_quota_bytes: int = 20 * 1_073_741_824
    # How long a signed media URL (private and unlisted tracks) stays valid.
    media_url_seconds: int = 3600
    # A URL prefix that nginx maps to the media directory (``internal``): media answers
    # then carry ``X-Accel-Redirect`` and nginx sends the bytes. Empty: the node sends them.
    media_accel_redirect: str = ""
    # Bytes of repeat-requested HLS segments each process keeps in memory, answered without
    # reading their files (``miaou.audio.segment_cache``); 0 turns that off.
    media_memory_cache_bytes: int = 64 * 1_048_576
    # Background jobs (track processing): whether ``miaou serve`` runs them (turn off when
    # ``miaou worker`` processes do), CPU processes at once, and a job's lease.
    jobs_in_serve: bool = True
    job_processes: int = 2
    job_lease_seconds: int = 60
    # A warning (with the stuck stack) when the event loop does not turn for this long;
    # 0 turns the watch off (miaou.observability.loop_watch).
    loop_stall_ms: int = 1000
    ratelimit: RateLimitSettings = msgspec.field(default_factory=RateLimitSettings)

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return normalise_database_url(self.database_url)
        # Quoted: URL parsing would cut a path at "?" and decode "%xx" (quote keeps "/").
        return f"sqlite+aiosqlite:///{quote(str(Path(self.data_dir).resolve() / 'miaou.db'))}"

    @property
    def effective_media_dir(self) -> Path:
        return Path(self.media_dir or Path(self.data_dir) / "media").resolve()

    @property
    def max_upload_request_bytes(self) -> int:
        """A multipart send: ten attachments at the cap, plus 1 MiB for the JSON and framing."""
        return MAX_ATTACHMENTS * self.max_attachment_bytes + 1_048_576

    def masked(self) -> dict[str, Any]:
        """What ``miaou config`` prints: every setting, passwords in URLs masked."""
        data: dict[str, Any] = msgspec.to_builtins(self)
        data["database_url"] = mask_url(self.effective_database_url)
        data["redis_url"] = mask_url(self.redis_url) if self.redis_url else ""
        return data


def parse_rate(text: str, key: str = "rate") -> tuple[int, float]:
    match = _RATE.match(text)
    if not match or int(match[1]) < 1 or float(match[2]) <= 0:
        raise ConfigError(f"{key}: expected 'COUNT/SECONDS' like '10/60', got {text!r}")
    return int(match[1]), float(match[2])


def normalise_database_url(url: str) -> str:
    """Accept the common spellings and pick the async driver we ship."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"database_url is not a URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"database_url: unsupported database {backend!r} (sqlite or postgresql)")


def mask_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "***"


def _validate(settings: Settings) -> Settings:
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port must be in 0..65535, got {settings.port}")
    settings.effective_database_url  # noqa: B018 - raises ConfigError when invalid
    if settings.redis_url and not re.match(r"^(rediss?|unix)://", settings.redis_url):
        raise ConfigError(
            f"redis_url must start with redis://, rediss:// or unix://, got "
            f"{mask_url(settings.redis_url)!r}"
        )
    if not 1 <= settings.database_pool_size <= 1000:
        raise ConfigError(
            f"database_pool_size must be in 1..1000, got {settings.database_pool_size}"
        )
    if settings.worker_id is not None and not 0 <= settings.worker_id <= 1023:
        raise ConfigError(f"worker_id must be in 0..1023, got {settings.worker_id}")
    if settings.max_body_bytes < 1024:
        raise ConfigError("max_body_bytes must be at least 1024")
    if settings.max_attachment_bytes < 1:
        raise ConfigError("max_attachment_bytes must be at least 1")
    if not 0 <= settings.auth_cache_seconds <= 300:  # NaN fails too
        raise ConfigError(
            f"auth_cache_seconds must be in 0..300, got {settings.auth_cache_seconds}"
        )
    if settings.password_memory_kib < 8 or settings.password_time_cost < 1:
        raise ConfigError("password_memory_kib must be >= 8 and password_time_cost >= 1")
    if not 1000 <= settings.gateway_heartbeat_ms <= 300_000:
        raise ConfigError("gateway_heartbeat_ms must be in 1000..300000")
    if not 65_536 <= settings.gateway_send_buffer_bytes <= 67_108_864:
        raise ConfigError("gateway_send_buffer_bytes must be in 65536..67108864 (64 KiB..64 MiB)")
    if not 60 <= settings.resume_window_seconds <= 604_800:
        raise ConfigError("resume_window_seconds must be in 60..604800 (one minute to a week)")
    if settings.max_track_bytes < 1024 or not 1 <= settings.max_track_seconds <= 86_400:
        raise ConfigError("max_track_bytes must be >= 1024 and max_track_seconds in 1..86400")
    if settings.track_quota_count < 0 or settings.track_quota_bytes < 0:
        raise ConfigError("track_quota_count and track_quota_bytes must be >= 0 (0: no limit)")
    if settings.loop_stall_ms != 0 and not 20 <= settings.loop_stall_ms <= 600_000:
        raise ConfigError(
            f"loop_stall_ms must be 0 (off) or in 20..600000, got {settings.loop_stall_ms}"
        )
    if not 60 <= settings.media_url_seconds <= 604_800:
        raise ConfigError("media_url_seconds must be in 60..604800 (one minute to a week)")
    if settings.media_accel_redirect and not (
        settings.media_accel_redirect.startswith("/")
        and settings.media_accel_redirect.endswith("/")
    ):
        raise ConfigError("media_accel_redirect must be empty or a path like /_media/")
    if not 0 <= settings.media_memory_cache_bytes <= 1 << 40:
        raise ConfigError("media_memory_cache_bytes must be in 0..1099511627776 (0: off)")
    if not 1 <= settings.job_processes <= 64:
        raise ConfigError(f"job_processes must be in 1..64, got {settings.job_processes}")
    if not 10 <= settings.job_lease_seconds <= 3600:
        raise ConfigError("job_lease_seconds must be in 10..3600")
    for name in ("auth_per_ip", "api_per_ip", "api_per_user"):
        settings.ratelimit.parsed(name)
    return settings


def _merge(base: dict[str, Any], layer: Mapping[str, Any]) -> None:
    for key, value in layer.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def env_layer(environ: Mapping[str, str]) -> dict[str, Any]:
    layer: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("MIAOU_") or name.startswith(_NOT_SETTINGS):
            continue
        path = name[len("MIAOU_") :].lower().split("__")
        node = layer
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = None if value == "" and path[-1] == "log_json" else value
    return layer


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build the settings in force. Raises :class:`ConfigError` naming the bad key."""
    environ = os.environ if environ is None else environ
    merged: dict[str, Any] = msgspec.to_builtins(Settings())
    path = config_file or environ.get("MIAOU_CONFIG") or None  # MIAOU_CONFIG="" is unset
    if path is None and Path("miaou.toml").is_file():
        path = "miaou.toml"
    layers: list[tuple[str, Mapping[str, Any]]] = []
    if path is not None:
        try:
            layers.append((str(path), tomllib.loads(Path(path).read_text("utf-8"))))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not valid TOML: not UTF-8 text") from None
        except OSError as exc:  # a directory, no permission, ...
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    layers.append(("environment", env_layer(environ)))
    layers.append(("flags", {k: v for k, v in (overrides or {}).items() if v is not None}))
    for source, layer in layers:
        _merge(merged, layer)
        try:  # validate after each layer so the error names the layer that brought it
            msgspec.convert(merged, Settings, strict=False)
        except msgspec.ValidationError as exc:
            message = _explain(exc)
            if source == "environment":  # name the variable the operator actually set
                message = re.sub(
                    r"setting '([^']+)'",
                    lambda m: f"setting 'MIAOU_{m[1].upper().replace('.', '__')}'",
                    message,
                )
            raise ConfigError(f"{source}: {message}") from None
    return _validate(msgspec.convert(merged, Settings, strict=False))


def _explain(exc: msgspec.ValidationError) -> str:
    # msgspec says "Object contains unknown field `x` - at `$.ratelimit`"; make it a key path.
    text = str(exc)
    match = re.match(r"Object contains unknown field `([^`]+)`(?: - at `\$\.?(.*)`)?", text)
    if match:
        key = f"{match[2]}.{match[1]}" if match[2] else match[1]
        return f"unknown setting {key!r}"
    return text.replace("`$.", "`")
