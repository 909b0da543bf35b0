"""The real ``miaou`` command, run as a subprocess in an empty directory and a clean environment.

The ``slow`` tests start ``miaou serve`` (and ``make run``) and stop it with signals; they only
ever signal the process (group) they started.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from miaou.sdk import ApiError, Client

ROOT = Path(__file__).resolve().parents[2]
MIAOU = [sys.executable, "-m", "miaou.cli"]
PASSWORD = "correct horse battery"
START_TIMEOUT = 30.0


def clean_env(**settings: str) -> dict[str, str]:
    """os.environ without MIAOU_*, plus cheap argon2id and the given settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIAOU_")}
    env.update(MIAOU_PASSWORD_TIME_COST="1", MIAOU_PASSWORD_MEMORY_KIB="1024")
    env.update(settings)
    return env


def miaou(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MIAOU, *args],
        cwd=cwd,
        env=env or clean_env(),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a refused command: one line, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- commands that need no server ---------------------------------------------------------


def test_version(tmp_path) -> None:
    from miaou import __version__

    result = miaou(tmp_path, "version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"miaou {__version__}"


def test_config_prints_the_layered_settings_with_secrets_masked(tmp_path) -> None:
    (tmp_path / "miaou.toml").write_text('port = 7000\nlog_level = "debug"\n[ratelimit]\n')
    env = clean_env(
        MIAOU_PORT="7001",
        MIAOU_REGISTRATION="invite",
        MIAOU_REDIS_URL="redis://:hunter2-pw@127.0.0.1:6379/0",
        MIAOU_TEST_WHATEVER="not a setting",
    )
    result = miaou(
        tmp_path,
        "config",
        "--port",
        "7002",
        "--database-url",
        "postgresql://u:secret@127.0.0.1/db",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "secret" not in result.stdout and "hunter2" not in result.stdout
    shown = json.loads(result.stdout)
    assert shown["port"] == 7002  # flag > env > miaou.toml
    assert shown["log_level"] == "debug"  # from ./miaou.toml
    assert shown["registration"] == "invite"  # from the environment
    assert shown["database_url"] == "postgresql+asyncpg://u:***@127.0.0.1/db"
    assert shown["redis_url"] == "redis://:***@127.0.0.1:6379/0"
    assert shown["ratelimit"]["enabled"] is True


def test_config_default_database_is_in_the_data_dir(tmp_path) -> None:
    result = miaou(tmp_path, "config", "--data-dir", "d")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["database_url"] == f"sqlite+aiosqlite:///{tmp_path.resolve() / 'd' / 'miaou.db'}"


@pytest.mark.parametrize(
    ("toml", "env", "args", "needle"),
    [
        ("nope = 1\n", {}, ["config"], "'nope'"),
        ("[ratelimit]\nnope = 1\n", {}, ["migrate"], "'ratelimit.nope'"),
        ("", {"MIAOU_FOO": "1"}, ["user", "list"], "'MIAOU_FOO'"),
        ("", {}, ["migrate", "--database-url", "mysql://u@127.0.0.1/db"], "database_url"),
        ("", {}, ["config", "--database-url", "no url at all"], "database_url"),
        ("", {}, ["serve", "--port", "70000"], "port"),
        ("", {"MIAOU_PORT": "eighty"}, ["serve"], "port"),
        ("", {}, ["config", "--redis-url", "http://127.0.0.1:6379"], "redis_url"),
        ("", {}, ["--config", "absent.toml", "config"], "absent.toml"),
        ("", {}, ["--config", ".", "config"], "cannot read"),
        ("port = \n", {}, ["config"], "not valid TOML"),
    ],
)
def test_bad_setting_exits_2_with_one_line_naming_it(tmp_path, toml, env, args, needle) -> None:
    if toml:
        (tmp_path / "miaou.toml").write_text(toml)
    result = miaou(tmp_path, *args, env=clean_env(**env))
    assert result.returncode == 2
    line = one_line_error(result)
    assert line.startswith("miaou: configuration error:")
    assert needle in line
    assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing was started or created


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["user", "list", "--limit", "0"], "--limit"),
        (["user", "list", "--after", "abc"], "--after"),
        (["invite", "create", "--expires-in", "0"], "--expires-in"),
        (["serve", "--port", "http"], "--port"),
    ],
)
def test_bad_arguments_are_usage_errors(tmp_path, args, needle) -> None:
    result = miaou(tmp_path, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]


def test_migrate_creates_the_sqlite_database(tmp_path) -> None:
    data = tmp_path / "fresh" / "data"
    result = miaou(tmp_path, "migrate", "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"database at revision \S+\n", result.stdout)
    assert (data / "miaou.db").is_file()
    again = miaou(tmp_path, "migrate", "--data-dir", str(data))
    assert (again.returncode, again.stdout) == (0, result.stdout)  # idempotent


async def run(cwd: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``miaou`` from async code, without blocking the event loop of the node under test."""
    return await asyncio.to_thread(miaou, cwd, *args, stdin=stdin)


async def test_user_create_list_disable_enable(tmp_path, database_url, start_node) -> None:
    db = ["--database-url", database_url]
    created = await run(tmp_path, "user", "create", "Alice", *db, stdin=PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    match = re.fullmatch(r"created user Alice \(id (\d+)\)\n", created.stdout)
    assert match, created.stdout
    alice_id = match[1]
    # Independent commands run side by side (each one is a fresh Python process).
    admin, duplicate, weak = await asyncio.gather(
        run(tmp_path, "user", "create", "root-ops", "--admin", *db, stdin=PASSWORD),
        run(tmp_path, "user", "create", "ALICE", *db, stdin=PASSWORD + "\n"),
        run(tmp_path, "user", "create", "bob", *db, stdin="short\n"),
    )
    assert admin.returncode == 0 and "as administrator" in admin.stdout
    assert duplicate.returncode == 1
    assert "taken" in duplicate.stderr and "Traceback" not in duplicate.stderr
    assert weak.returncode == 1 and "password" in weak.stderr

    listed, as_json, page = await asyncio.gather(
        run(tmp_path, "user", "list", *db),
        run(tmp_path, "user", "list", "--json", *db),
        run(tmp_path, "user", "list", "--json", "--after", alice_id, *db),
    )
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert rows[0][:3] == [alice_id, "Alice", "-"]
    assert [r[1:3] for r in rows] == [["Alice", "-"], ["root-ops", "admin"]]  # no "bob"
    users = json.loads(as_json.stdout)
    assert [(u["id"], u["username"], u["admin"], u["disabled"]) for u in users] == [
        (alice_id, "Alice", False, False),
        (users[1]["id"], "root-ops", True, False),
    ]
    assert [u["username"] for u in json.loads(page.stdout)] == ["root-ops"]

    node = await start_node()
    async with Client(node.url, rate_limit_retries=0) as http:
        session = await http.login("alice", PASSWORD)
        assert session.user.id == alice_id

        disabled = await run(tmp_path, "user", "disable", "alice", *db)
        assert (disabled.returncode, disabled.stdout) == (0, "disabled user Alice\n")
        with pytest.raises(ApiError) as refused:
            await http.me()  # the token from before stops working
        assert refused.value.status in (401, 403)
        async with Client(node.url, rate_limit_retries=0) as other:
            with pytest.raises(ApiError) as login:
                await other.login("alice", PASSWORD)
        assert (login.value.status, login.value.code) == (403, "account_disabled")
        users = json.loads((await run(tmp_path, "user", "list", "--json", *db)).stdout)
        assert [u["disabled"] for u in users] == [True, False]

        enabled = await run(tmp_path, "user", "enable", "alice", *db)
        assert (enabled.returncode, enabled.stdout) == (0, "enabled user Alice\n")
        async with Client(node.url, rate_limit_retries=0) as again:
            await again.login("alice", PASSWORD)
            assert (await again.me()).username == "Alice"
        with pytest.raises(ApiError):
            await http.me()  # disabling ended the session for good

    unknown = await run(tmp_path, "user", "disable", "nobody", *db)
    assert unknown.returncode == 1 and "nobody" in unknown.stderr


async def test_invite_code_from_the_cli_registers_once(tmp_path, database_url, start_node) -> None:
    created = await run(
        tmp_path, "invite", "create", "--max-uses", "1", "--database-url", database_url
    )
    assert created.returncode == 0, created.stderr
    code = created.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9]{16}", code)
    node = await start_node(registration="invite")
    async with Client(node.url, rate_limit_retries=0) as a, Client(node.url) as b:
        with pytest.raises(ApiError) as needed:
            await a.register("mia", PASSWORD)
        assert needed.value.code == "invite_required"
        assert (await a.register("mia", PASSWORD, invite_code=code)).user.username == "mia"
        with pytest.raises(ApiError) as used_up:
            await b.register("nils", PASSWORD, invite_code=code)
        assert used_up.value.code == "invalid_invite"

    listed = await run(tmp_path, "invite", "list", "--database-url", database_url)
    assert listed.returncode == 0, listed.stderr
    assert f"{code}  uses 1/1" in listed.stdout
    revoked = await run(tmp_path, "invite", "revoke", code, "--database-url", database_url)
    assert (revoked.returncode, revoked.stdout) == (0, f"revoked {code}\n")
    after = await run(tmp_path, "invite", "list", "--database-url", database_url)
    assert code not in after.stdout
    again = await run(tmp_path, "invite", "revoke", code, "--database-url", database_url)
    assert again.returncode == 1 and "No such invite" in again.stderr


# -- serving ------------------------------------------------------------------------------


@contextlib.contextmanager
def serving(
    cwd: Path, data_dir: Path, port: int, log: Path, args: list[str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``miaou serve`` in its own session; SIGKILLed (that PID only) if still running at exit."""
    with log.open("ab") as err:
        proc = subprocess.Popen(
            args or [*MIAOU, "serve", "--port", str(port), "--data-dir", str(data_dir)],
            cwd=cwd,
            env=clean_env(MIAOU_LOG_JSON="true"),
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_healthy(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    for _ in range(int(START_TIMEOUT / 0.05)):
        if proc.poll() is not None:
            pytest.fail(f"exited with {proc.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    pytest.fail(f"/healthz not 200 within {START_TIMEOUT} s:\n{log.read_text()}")


@pytest.mark.slow
def test_an_acknowledged_write_survives_kill_9(tmp_path) -> None:
    data, log = tmp_path / "data", tmp_path / "serve.log"
    port = free_port()
    with serving(tmp_path, data, port, log) as proc:
        wait_healthy(proc, port, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            registered = http.post(
                "/api/v1/auth/register", json={"username": "olga", "password": PASSWORD}
            )
            assert registered.status_code == 201, registered.text
            token = registered.json()["token"]
            auth = {"authorization": f"Bearer {token}"}
            patched = http.patch("/api/v1/users/@me", json={"bio": "still here"}, headers=auth)
            assert patched.status_code == 200, patched.text
        os.kill(proc.pid, signal.SIGKILL)  # right after the acknowledgement
        assert proc.wait(timeout=10) == -signal.SIGKILL

    port = free_port()
    with serving(tmp_path, data, port, log) as proc:
        wait_healthy(proc, port, log)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            me = http.get("/api/v1/users/@me", headers=auth)
            assert me.status_code == 200, me.text
            assert (me.json()["username"], me.json()["bio"]) == ("olga", "still here")
            login = http.post("/api/v1/auth/login", json={"username": "olga", "password": PASSWORD})
            assert login.status_code == 200, login.text


@pytest.mark.slow
def test_serve_freezes_what_startup_made(tmp_path) -> None:
    """The served process's startup objects are out of the collector's walks (a full
    collection of them took 77-92 ms); a node in the tests' own process freezes nothing."""
    log = tmp_path / "serve.log"
    port = free_port()
    with serving(tmp_path, tmp_path / "data", port, log) as proc:
        wait_healthy(proc, port, log)
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    frozen = next(
        float(line.split()[1]) for line in metrics.splitlines()
        if line.startswith("miaou_gc_frozen_objects ")
    )  # fmt: skip
    assert frozen > 50_000
    assert gc.get_freeze_count() == 0


@pytest.mark.slow
def test_sigterm_stops_gracefully_with_status_0(tmp_path) -> None:
    log = tmp_path / "serve.log"
    port = free_port()
    with serving(tmp_path, tmp_path / "data", port, log) as proc:
        wait_healthy(proc, port, log)
        started = time.monotonic()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0, log.read_text()
        assert time.monotonic() - started < 10
    assert "Traceback" not in log.read_text()
    with pytest.raises(httpx.TransportError):  # the port is closed
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)


@pytest.mark.slow
def test_port_in_use_exits_2_with_a_clear_message(tmp_path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = miaou(tmp_path, "serve", "--port", str(port), "--data-dir", str(tmp_path / "d"))
    assert result.returncode == 2
    line = one_line_error(result)
    assert "already in use" in line and str(port) in line


@pytest.mark.slow
def test_make_run_serves_healthz(tmp_path) -> None:
    make = ["make", "--no-print-directory", "-C", str(ROOT)]
    # `make run` installs first when the venv is stale; do that outside the 30 s budget.
    if subprocess.run([*make, "-q", ".venv/.installed"], check=False, timeout=30).returncode:
        subprocess.run([*make, "install"], check=True, timeout=600, capture_output=True)
    log, port = tmp_path / "make-run.log", free_port()
    data = tmp_path / "make-data"
    args = [*make, "run", f"PORT={port}", f"DATA_DIR={data}"]
    with serving(tmp_path, data, port, log, args=args) as proc:
        try:
            wait_healthy(proc, port, log)
            assert (data / "miaou.db").is_file()
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # make and the node it started
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            # make may exit before the node it started: wait for the whole group to be gone.
            for _ in range(100):
                try:
                    os.killpg(proc.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.killpg(proc.pid, signal.SIGKILL)
