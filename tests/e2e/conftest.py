"""Browser tests of the web client: a real node, Debian's Chromium driven by Playwright.

No browser is downloaded: Playwright launches ``/usr/bin/chromium`` (``.ci/run`` installs it
with apt-get when missing). Without it these tests fail in CI and are skipped elsewhere.
Every page's console errors and uncaught exceptions are collected; a test ends by
asserting there were none. Screenshots go to ``test-artifacts/e2e/`` at the repository's
root (git-ignored), or to ``$MIAOU_E2E_ARTIFACTS``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    async_playwright,
    expect,
)

from miaou.sdk import Client
from miaou.server import RunningNode

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
ARTIFACTS = Path(
    os.environ.get("MIAOU_E2E_ARTIFACTS")
    or Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
)
PASSWORD = "correct horse battery"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Generous: the whole suite may be running on two busy cores.
expect.set_options(timeout=10_000)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.path.exists(CHROMIUM) or os.environ.get("CI"):
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing (apt-get install chromium)")
    for item in items:
        if item.path.is_relative_to(Path(__file__).parent):
            item.add_marker(skip)


@pytest.fixture
async def node(start_node: Any) -> RunningNode:
    # Rate limits off: the tests make more requests per second than a person.
    node: RunningNode = await start_node(ratelimit={"enabled": False})
    return node


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """Console errors and page errors of every page opened in a test."""

    errors: list[str] = field(default_factory=list)
    #: Messages expected while a test cuts the network on purpose.
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, page: Page, name: str) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self.record(f"{name}: console: {message.text} ({message.location})")

        page.on("console", on_console)
        page.on("pageerror", lambda error: self.record(f"{name}: page error: {error}"))

    def record(self, text: str) -> None:
        if not any(p.search(text) for p in self.allowed):
            self.errors.append(text)

    def check(self) -> None:
        assert self.errors == [], "errors in the browser:\n" + "\n".join(self.errors)


@pytest.fixture
def console() -> Console:
    return Console()


OpenPage = Callable[..., Awaitable[Page]]


@pytest.fixture
async def open_page(
    browser: Browser, node: RunningNode, console: Console
) -> AsyncIterator[OpenPage]:
    """Open a page as a new user (its own browser context: storage, token) at ``path``."""
    contexts: list[BrowserContext] = []

    async def open_(name: str, path: str = "/", token: str | None = None, **options: Any) -> Page:
        """``token``: signed in with it (a session made through the SDK), without the form;
        it is put back on every load of that page, so do not log out with it."""
        options.setdefault("viewport", DESKTOP)
        context = await browser.new_context(base_url=node.url, **options)
        context.set_default_timeout(10_000)
        contexts.append(context)
        if token is not None:
            await context.add_init_script(
                f"localStorage.setItem('miaou.token', {json.dumps(token)})"
            )
        page = await context.new_page()
        console.watch(page, name)
        await page.goto(path)
        return page

    yield open_
    for context in contexts:
        await context.close()


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


async def screenshot(page: Page, name: str) -> Path:
    path = artifact(f"{name}.png")
    await page.screenshot(path=str(path))
    return path


async def register(page: Page, username: str) -> None:
    """Fill the registration form (the page shows the login screen)."""
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()


async def token_of(page: Page) -> str:
    token: str = await page.evaluate("localStorage.getItem('miaou.token')")
    return token


@dataclass
class Cast:
    """People registered through the SDK, the first one owning a guild the others joined."""

    clients: list[Client]
    ids: list[str]
    guild: dict[str, Any]
    general: str

    @property
    def guild_id(self) -> str:
        return str(self.guild["id"])

    @property
    def category(self) -> str:
        return str(next(c["id"] for c in self.guild["channels"] if c["type"] == 4))


@contextlib.asynccontextmanager
async def guild_with(node: RunningNode, guild_name: str, *names: str) -> AsyncIterator[Cast]:
    """``names[0]`` creates ``guild_name``; the others join it by one invite to #general."""
    clients = [Client(node.url) for _ in names]
    try:
        ids = [(await c.register(n, PASSWORD)).user.id for c, n in zip(clients, names, strict=True)]
        guild = await clients[0].create_guild(guild_name)
        general = guild["system_channel_id"]
        code = (await clients[0].create_guild_invite(general))["code"]
        for client in clients[1:]:
            await client.join(code)
        yield Cast(clients, ids, guild, general)
    finally:
        for client in clients:
            await client.close()
