"""Direct messages in three browsers: Alice opens a DM from Bob's card in the member list;
it reaches Bob live on his home screen, unread, and they talk; Alice starts a group with Bob
and Carol from her home screen; it appears for Carol live. The same message list as in
channels: replies and edits work there too."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Locator, Page, expect

from conftest import Console, OpenPage, guild_with, screenshot
from miaou.sdk import Client
from miaou.server import RunningNode

pytestmark = pytest.mark.database_kinds("sqlite")


@dataclass
class World:
    alice: Client
    bob: Client
    carol: Client
    guild_id: str
    general: str


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[World]:
    async with guild_with(node, "Whisker Club", "alice", "bob", "carol") as cast:
        yield World(*cast.clients, cast.guild_id, cast.general)


async def open_as(open_page: OpenPage, name: str, client: Client, path: str) -> Page:
    assert client.token is not None
    page = await open_page(name, path, token=client.token)
    await expect(page.locator("miaou-channels")).to_be_visible()
    return page


def dm_link(page: Page, name: str) -> Locator:
    return page.locator("miaou-dm-list a.dm-link", has_text=name)


async def test_direct_and_group_messages(
    open_page: OpenPage, console: Console, world: World
) -> None:
    alice = await open_as(
        open_page, "alice", world.alice, f"/channels/{world.guild_id}/{world.general}"
    )
    bob = await open_as(open_page, "bob", world.bob, "/channels/@me")
    carol = await open_as(open_page, "carol", world.carol, "/channels/@me")
    await expect(bob.get_by_text("No conversation yet.")).to_be_visible()

    # Alice writes to Bob from his card in the member list.
    await alice.locator("miaou-members").get_by_role("button", name="bob").click()
    await (
        alice.get_by_role("dialog", name="bob").get_by_role("button", name="Send a message").click()
    )
    await expect(alice.get_by_role("heading", name="@ bob", exact=True)).to_be_visible()
    await expect(alice).to_have_url(re.compile(r"/channels/@me/\d+$"))
    box = alice.get_by_label("Message @bob")
    await box.fill("hello **bob**")
    await box.press("Enter")

    # It reaches Bob live: the conversation appears in his list, unread.
    link = dm_link(bob, "alice")
    await expect(link).to_have_class("channel-link dm-link unread")
    await screenshot(bob, "50-dm-list-unread")
    await link.click()
    await expect(bob.get_by_role("heading", name="@ alice", exact=True)).to_be_visible()
    hello = bob.locator("li.message", has_text="hello")
    await expect(hello.locator("strong")).to_have_text("bob")
    await expect(link).to_have_class("channel-link dm-link")
    # He replies to it; Alice sees the reply live.
    await hello.hover()
    await hello.get_by_role("button", name="Reply").click()
    reply_box = bob.get_by_label("Message @alice")
    await reply_box.fill("hi alice!")
    await reply_box.press("Enter")
    reply = alice.locator("li.message", has_text="hi alice!")
    await expect(reply.locator(".reply-preview")).to_contain_text("hello bob")
    await screenshot(alice, "51-dm-conversation")
    dms = await world.bob.my_dms()
    assert [sorted(u["username"] for u in d["recipients"]) for d in dms] == [["alice", "bob"]]

    # Bob's link to Alice is marked (a JS property the DOM does not copy): a new
    # conversation in his list leaves it the element it was.
    await link.evaluate("a => { a.mark = 'kept'; }")

    # Alice starts a group with Bob and Carol from her home screen.
    await alice.locator("miaou-guilds a.guild-icon.home").click()
    await expect(dm_link(alice, "bob")).to_be_visible()
    await alice.get_by_role("button", name="New group message").first.click()
    dialog = alice.get_by_role("dialog", name="New group message")
    await dialog.get_by_label("bob").check()
    await dialog.get_by_label("carol").check()
    await dialog.get_by_label("Group name (optional)").fill("Trio")
    await dialog.get_by_role("button", name="Create group").click()
    await expect(alice.get_by_role("heading", name="Trio", exact=True)).to_be_visible()
    group_box = alice.get_by_label("Message Trio")
    await group_box.fill("welcome to the trio")
    await group_box.press("Enter")

    group = dm_link(carol, "Trio")
    await expect(group).to_have_attribute("aria-label", "Trio, group of 3, unread")
    await group.click()
    await expect(carol.locator("li.message", has_text="welcome to the trio")).to_be_visible()
    carol_box = carol.get_by_label("Message Trio")
    await carol_box.fill("purr")
    await carol_box.press("Enter")
    await expect(bob.locator("miaou-dm-list")).to_contain_text("Trio")
    assert await link.evaluate("a => a.mark ?? null") == "kept"
    await expect(alice.locator("li.message", has_text="purr")).to_be_visible()
    await screenshot(carol, "52-group-dm")
    console.check()
