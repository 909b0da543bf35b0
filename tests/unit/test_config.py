"""Settings: defaults < miaou.toml < MIAOU_* < flags, strict keys, validation, masking."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from miaou.config import Settings, load_settings, parse_rate
from miaou.errors import ConfigError

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory: no stray ./miaou.toml is picked up."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.write_text(text, "utf-8")
    return path


def test_defaults() -> None:
    s = load_settings(environ={})
    assert s == Settings()
    assert (s.host, s.port, s.registration, s.data_dir) == ("127.0.0.1", 8080, "open", "./data")
    assert s.ratelimit.enabled is True and s.ratelimit.auth_per_ip == "10/60"
    assert s.worker_id is None and s.log_json is None and s.redis_url == ""


LAYERS = ("toml", "env", "flag")


@pytest.mark.parametrize(
    "present",
    [combo for n in range(len(LAYERS) + 1) for combo in itertools.combinations(LAYERS, n)],
    ids=lambda combo: "+".join(combo) or "defaults",
)
def test_each_layer_beats_the_ones_before(tmp_path, present) -> None:
    ports = {"toml": 9001, "env": 9002, "flag": 9003}
    config = write(tmp_path / "c.toml", f"port = {ports['toml']}\n") if "toml" in present else None
    environ = {"MIAOU_PORT": str(ports["env"])} if "env" in present else {}
    # The CLI passes None for every flag not given: None never overrides.
    overrides = {"port": ports["flag"] if "flag" in present else None, "host": None}
    s = load_settings(config, environ=environ, overrides=overrides)
    expected = ports[present[-1]] if present else 8080
    assert s.port == expected
    assert s.host == "127.0.0.1"


def test_layers_merge_key_by_key(tmp_path) -> None:
    config = write(tmp_path / "c.toml", 'host = "10.1.2.3"\nport = 9001\nlog_level = "debug"\n')
    s = load_settings(
        config,
        environ={"MIAOU_PORT": "9002", "MIAOU_REGISTRATION": "invite"},
        overrides={"registration": "closed"},
    )
    assert (s.host, s.port, s.log_level, s.registration) == ("10.1.2.3", 9002, "debug", "closed")


def test_nested_ratelimit_table_and_env_override(tmp_path) -> None:
    config = write(
        tmp_path / "c.toml",
        '[ratelimit]\nenabled = true\nauth_per_ip = "5/30"\n',
    )
    s = load_settings(config, environ={"MIAOU_RATELIMIT__ENABLED": "false"})
    assert s.ratelimit.enabled is False
    # The env variable replaced one key of the table, not the table.
    assert s.ratelimit.auth_per_ip == "5/30"
    assert s.ratelimit.api_per_ip == "300/10"
    assert s.ratelimit.parsed("auth_per_ip") == (5, 30.0)
    assert load_settings(config, environ={}).ratelimit.enabled is True


def test_env_strings_are_coerced() -> None:
    s = load_settings(
        environ={
            "MIAOU_PORT": "9000",
            "MIAOU_TRUST_PROXY": "true",
            "MIAOU_MIGRATE_ON_START": "0",
            "MIAOU_LOG_JSON": "false",
            "MIAOU_WORKER_ID": "7",
            "MIAOU_MAX_BODY_BYTES": "4096",
            "MIAOU_RATELIMIT__ENABLED": "False",
        }
    )
    assert s.port == 9000 and isinstance(s.port, int)
    assert s.trust_proxy is True and s.migrate_on_start is False
    assert s.log_json is False and s.ratelimit.enabled is False
    assert s.worker_id == 7 and s.max_body_bytes == 4096


def test_empty_log_json_means_auto() -> None:
    assert load_settings(environ={"MIAOU_LOG_JSON": ""}).log_json is None
    assert load_settings(environ={"MIAOU_LOG_JSON": "1"}).log_json is True


@fixture_ok
@given(port=st.integers(min_value=0, max_value=65535))
def test_any_valid_port_from_env(port) -> None:
    assert load_settings(environ={"MIAOU_PORT": str(port)}).port == port


@fixture_ok
@given(port=st.one_of(st.integers(max_value=-1), st.integers(min_value=65536)))
def test_ports_out_of_range_are_refused(port) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(environ={"MIAOU_PORT": str(port)})
    with pytest.raises(ConfigError, match="port"):
        load_settings(environ={}, overrides={"port": port})


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("nope = 1\n", ["nope"]),
        ("[ratelimit]\nnope = true\n", ["ratelimit.nope"]),
        ("[ratelimt]\nenabled = false\n", ["ratelimt"]),
    ],
)
def test_unknown_toml_key_is_named(tmp_path, text, names) -> None:
    config = write(tmp_path / "c.toml", text)
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})
    for name in names:
        assert repr(name) in refused.value.message
    assert str(config) in refused.value.message  # and the layer that brought it


@pytest.mark.parametrize("variable", ["MIAOU_FOO", "MIAOU_RATELIMIT__NOPE", "MIAOU_POR"])
def test_unknown_env_variable_is_named(variable) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={variable: "1"})
    assert repr(variable) in refused.value.message
    assert "environment" in refused.value.message


def test_unknown_flag_is_named() -> None:
    with pytest.raises(ConfigError, match="'nope'"):
        load_settings(environ={}, overrides={"nope": 1})


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"MIAOU_PORT": "eighty"})
    assert "port" in refused.value.message and "environment" in refused.value.message


def test_non_settings_variables_are_ignored(tmp_path) -> None:
    environ = {
        "MIAOU_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:5432/x",
        "MIAOU_TEST_ANYTHING": "whatever",
        "MIAOU_CONFIG_NOT_A_FILE": "x",
        "PORT": "1",
        "miaou_port": "2",
    }
    assert load_settings(environ=environ) == Settings()


def test_miaou_config_names_the_file_and_the_flag_wins(tmp_path) -> None:
    from_env = write(tmp_path / "env.toml", "port = 9100\n")
    from_flag = write(tmp_path / "flag.toml", "port = 9200\n")
    assert load_settings(environ={"MIAOU_CONFIG": str(from_env)}).port == 9100
    assert load_settings(from_flag, environ={"MIAOU_CONFIG": str(from_env)}).port == 9200


def test_miaou_toml_in_the_working_directory_is_read(in_tmp) -> None:
    write(in_tmp / "miaou.toml", 'registration = "invite"\n')
    assert load_settings(environ={}).registration == "invite"
    # An empty MIAOU_CONFIG is as good as unset.
    assert load_settings(environ={"MIAOU_CONFIG": ""}).registration == "invite"


def test_missing_config_file(tmp_path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(environ={"MIAOU_CONFIG": str(tmp_path / "absent.toml")})


@pytest.mark.parametrize("content", [b"port = \n", b"[ratelimit\n", b'host = "a\n', b"\xff\xfe"])
def test_invalid_toml(tmp_path, content) -> None:
    config = tmp_path / "bad.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(config, environ={})


def test_config_path_that_is_a_directory(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path, environ={})


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"database_url": "not a url"}, "database_url"),
        ({"database_url": "mysql://u@127.0.0.1/db"}, "unsupported database 'mysql'"),
        ({"database_url": "oracle://u@h/db"}, "unsupported database"),
        ({"redis_url": "http://127.0.0.1:6379"}, "redis_url"),
        ({"redis_url": "127.0.0.1:6379"}, "redis_url"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"worker_id": 1024}, "worker_id"),
        ({"database_pool_size": 0}, "database_pool_size"),
        ({"registration": "sometimes"}, "registration"),
        ({"log_level": "loud"}, "log_level"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"password_memory_kib": 1}, "password_memory_kib"),
    ],
)
def test_bad_values_are_refused(overrides, needle) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={}, overrides=overrides)
    assert needle in refused.value.message


@pytest.mark.parametrize("rate", ["10", "0/10", "10/0", "a/b", "-1/10", "10/-5", "", "1/2/3"])
@pytest.mark.parametrize("key", ["auth_per_ip", "api_per_ip", "api_per_user"])
def test_bad_rate_strings_are_refused(tmp_path, key, rate) -> None:
    config = write(tmp_path / "c.toml", f'[ratelimit]\n{key} = "{rate}"\n')
    with pytest.raises(ConfigError) as refused:
        load_settings(config, environ={})
    assert f"ratelimit.{key}" in refused.value.message


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("10/60", (10, 60.0)), (" 5 / 1.5s ", (5, 1.5)), ("300/10", (300, 10.0))],
)
def test_rate_strings(text, parsed) -> None:
    assert parse_rate(text) == parsed
    env = {"MIAOU_RATELIMIT__API_PER_USER": text}
    assert load_settings(environ=env).ratelimit.parsed("api_per_user") == parsed


def test_default_database_is_sqlite_in_the_data_dir(in_tmp) -> None:
    url = load_settings(environ={}).effective_database_url
    assert url.startswith("sqlite+aiosqlite:///")
    # ./data resolved against the working directory, so the path is absolute.
    assert make_url(url).database == str(in_tmp.resolve() / "data" / "miaou.db")
    other = load_settings(environ={"MIAOU_DATA_DIR": str(in_tmp / "elsewhere")})
    assert make_url(other.effective_database_url).database == str(
        in_tmp.resolve() / "elsewhere" / "miaou.db"
    )


@pytest.mark.parametrize("name", ["with space", "odd?name", "per%41cent", "at@sign", "hash#x"])
def test_data_dir_with_url_characters_still_names_that_directory(in_tmp, name) -> None:
    url = load_settings(environ={}, overrides={"data_dir": name}).effective_database_url
    assert make_url(url).database == str(in_tmp.resolve() / name / "miaou.db")


@pytest.mark.parametrize(
    ("given_url", "expected"),
    [
        ("postgres://u:p@db.example:5433/miaou", "postgresql+asyncpg://u:p@db.example:5433/miaou"),
        ("postgresql://u:p@db.example/miaou", "postgresql+asyncpg://u:p@db.example/miaou"),
        ("postgresql+psycopg://u@db.example/miaou", "postgresql+asyncpg://u@db.example/miaou"),
        ("postgresql+asyncpg://u@db.example/miaou", "postgresql+asyncpg://u@db.example/miaou"),
        ("sqlite:////srv/miaou/x.db", "sqlite+aiosqlite:////srv/miaou/x.db"),
    ],
)
def test_database_urls_are_normalised(given_url, expected) -> None:
    s = load_settings(environ={"MIAOU_DATABASE_URL": given_url})
    assert s.effective_database_url == expected
    assert s.database_url == given_url  # the setting itself is kept as given


def test_masked_hides_passwords() -> None:
    s = load_settings(
        environ={
            "MIAOU_DATABASE_URL": "postgresql://miaou:s3cret-pw@db.example/miaou",
            "MIAOU_REDIS_URL": "redis://:hunter2-pw@cache.example:6379/0",
        }
    )
    shown = s.masked()
    text = json.dumps(shown)
    assert "s3cret-pw" not in text and "hunter2-pw" not in text
    assert shown["database_url"] == "postgresql+asyncpg://miaou:***@db.example/miaou"
    assert shown["redis_url"] == "redis://:***@cache.example:6379/0"
    assert shown["port"] == 8080 and shown["ratelimit"]["enabled"] is True
    # Masking is for display only: the settings still carry the real URLs.
    assert "s3cret-pw" in s.effective_database_url and "hunter2-pw" in s.redis_url


def test_masked_without_secrets_shows_the_default_database(in_tmp) -> None:
    shown = load_settings(environ={}).masked()
    assert shown["redis_url"] == ""
    assert shown["database_url"].startswith("sqlite+aiosqlite:///")
    assert "***" not in json.dumps(shown)


def test_bad_redis_url_error_does_not_leak_the_password() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ={"MIAOU_REDIS_URL": "http://u:hunter2-pw@cache.example/0"})
    assert "redis_url" in refused.value.message
    assert "hunter2-pw" not in refused.value.message


def test_workers_divide_the_database_pool() -> None:
    from miaou.workers import worker_pool_size

    assert worker_pool_size(10, 1) == 10
    assert worker_pool_size(10, 3) == 4  # rounded up: 12 in all
    assert worker_pool_size(10, 8) == 2  # never under 2 per worker


@pytest.mark.parametrize("value", [-1, 1, 19, 600_001])
def test_loop_stall_threshold_out_of_range_is_refused(value) -> None:
    with pytest.raises(ConfigError, match="loop_stall_ms"):
        load_settings(environ={}, overrides={"loop_stall_ms": value})


@pytest.mark.parametrize("value", [0, 20, 1000, 600_000])
def test_loop_stall_threshold_in_range_or_off_is_taken(value) -> None:
    assert load_settings(environ={}, overrides={"loop_stall_ms": value}).loop_stall_ms == value
