"""Shared fixtures: settings, databases (SQLite always, PostgreSQL when configured), nodes.

``MIAOU_TEST_POSTGRES_URL`` (a server URL; each test gets a fresh database on it) and
``MIAOU_TEST_REDIS_URL`` turn on the PostgreSQL and Redis variants. In CI (``CI`` set) they
must be set and reachable: the run fails instead of quietly testing less.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import hypothesis
import pytest
from sqlalchemy.engine import make_url

from miaou.app import Node
from miaou.config import Settings, load_settings
from miaou.db import migrate
from miaou.db.engine import Database
from miaou.sdk import Client
from miaou.server import RunningNode, running

POSTGRES_URL = os.environ.get("MIAOU_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL", "")
IN_CI = bool(os.environ.get("CI"))

# Property tests check laws, not speed: on two shared cores one example can take longer
# than Hypothesis's 200 ms deadline (seen: 266 ms, then 0.05 ms on the retry).
hypothesis.settings.register_profile("miaou", deadline=None)
hypothesis.settings.load_profile("miaou")


def pytest_sessionstart(session: pytest.Session) -> None:
    if IN_CI and not (POSTGRES_URL and REDIS_URL):
        raise pytest.UsageError(
            "CI needs MIAOU_TEST_POSTGRES_URL and MIAOU_TEST_REDIS_URL (see .ci/run)"
        )


def database_kinds() -> list[str]:
    return ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_kind" in metafunc.fixturenames:
        kinds = database_kinds()
        # ``@pytest.mark.database_kinds("postgres")``: a test of what only that engine does
        # (several nodes on one database); it runs where that engine is configured.
        only = metafunc.definition.get_closest_marker("database_kinds")
        if only is not None:
            kinds = [k for k in kinds if k in only.args]
        metafunc.parametrize("database_kind", kinds)


def _asyncpg_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.render_as_string(hide_password=False)


class _Templates:
    """One migrated database per engine per test session, copied for each test.

    Running the migrations costs ~0.3 s per database; copying a migrated one costs a few
    milliseconds (a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL).
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.sqlite_file: Path | None = None
        self.postgres_name: str | None = None

    async def sqlite(self) -> Path:
        if self.sqlite_file is None:
            path = self.folder / "template.db"
            database = Database(f"sqlite+aiosqlite:///{path}")
            try:
                await migrate.upgrade(database)
            finally:
                await database.close()  # the last connection out checkpoints the WAL
            self.sqlite_file = path
        return self.sqlite_file

    async def postgres(self) -> str:
        if self.postgres_name is None:
            name = f"miaou_tpl_{secrets.token_hex(6)}"
            await _admin(f'CREATE DATABASE "{name}"')
            database = Database(_database_url(name))
            try:
                await migrate.upgrade(database)
            finally:
                await database.close()  # a template must have no connections to be copied
            self.postgres_name = name
        return self.postgres_name

    async def drop(self) -> None:
        if self.postgres_name is not None:
            await _admin(f'DROP DATABASE IF EXISTS "{self.postgres_name}" WITH (FORCE)')


async def _admin(statement: str) -> None:
    admin = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
    try:
        await admin.execute(statement)
    finally:
        await admin.close()


def _database_url(name: str) -> str:
    return (
        make_url(POSTGRES_URL)
        .set(drivername="postgresql+asyncpg", database=name)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
def _templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Templates]:
    templates = _Templates(tmp_path_factory.mktemp("template"))
    yield templates
    asyncio.run(templates.drop())  # each test's event loop is closed by now


@pytest.fixture
async def empty_database_url(database_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh database of the kind under test with nothing in it, not even migrations."""
    if database_kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'miaou.db'}"
        return
    name = f"miaou_t_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(
    database_kind: str,
    tmp_path: Path,
    _templates: _Templates,
) -> AsyncIterator[str]:
    """A fresh database of the kind under test, migrated to head, with no rows."""
    if database_kind == "sqlite":
        template = await _templates.sqlite()
        path = tmp_path / "miaou.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    template_name = await _templates.postgres()
    name = f"miaou_t_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    try:
        yield _database_url(name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(tmp_path: Path, database_url: str, **overrides: Any) -> Settings:
    """Test settings: loopback, a free port, cheap (but real) argon2id."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": 0,
        "data_dir": str(tmp_path / "data"),
        "database_url": database_url,
        "password_time_cost": 1,
        "password_memory_kib": 1024,
        "log_json": True,
        **overrides,
    }
    return load_settings(environ={}, overrides=values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url)


NodeFactory = Callable[..., Awaitable[RunningNode]]


@pytest.fixture
async def start_node(tmp_path: Path, database_url: str) -> AsyncIterator[NodeFactory]:
    """Start nodes on the test database with setting overrides; all stop at teardown."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> RunningNode:
            node = Node(make_settings(tmp_path, database_url, **overrides))
            return await stack.enter_async_context(running(node))

        yield start


@pytest.fixture
async def node(start_node: NodeFactory, request: pytest.FixtureRequest) -> RunningNode:
    """A node on the test database, with the overrides of the closest ``node_settings``
    marker if any (``pytestmark = NO_RATE_LIMITS`` in a module that sends faster than a
    person would: the limiter has its own tests)."""
    marker = request.node.get_closest_marker("node_settings")
    return await start_node(**(marker.kwargs if marker is not None else {}))


ClientFactory = Callable[..., Client]


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., Client]]:
    """SDK clients of a node the test started itself (``start_node``), closed at teardown.
    Unlike ``make_client`` it starts no default node, whose job runner would otherwise
    claim the jobs of the test's node on the same database."""
    made: list[Client] = []

    def make(url: str, **kw: Any) -> Client:
        client = Client(url, rate_limit_retries=0, **kw)
        made.append(client)
        return client

    yield make
    await asyncio.gather(*(c.close() for c in made))


@pytest.fixture
def make_client(node: RunningNode, clients: Callable[..., Client]) -> ClientFactory:
    def make(url: str | None = None, **kw: Any) -> Client:
        return clients(url or node.url, **kw)

    return make


@pytest.fixture
def client(make_client: ClientFactory) -> Client:
    return make_client()
