"""Threads in the side panel, in two browsers: a thread started from a message by Alice
appears live in Bob's thread list; he opens it, joins, writes in it, and she reads it live;
she archives it and he sees it archived; a standalone thread; a forum post with a tag,
seen by Bob and filtered by tag."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from conftest import PHONE, Console, OpenPage, guild_with, screenshot
from miaou.sdk import Client
from miaou.server import RunningNode

pytestmark = pytest.mark.database_kinds("sqlite")


@dataclass
class World:
    alice: Client
    bob: Client
    guild_id: str
    general: str
    forum: str


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[World]:
    async with guild_with(node, "Cat Lovers", "alice", "bob") as cast:
        alice, bob = cast.clients
        forum = await alice.create_channel(cast.guild_id, "ideas", type=15)
        await alice.update_channel(
            forum["id"], available_tags=[{"name": "question"}, {"name": "proposal"}]
        )
        await alice.send_message(cast.general, "what do cats dream of?")
        yield World(alice, bob, cast.guild_id, cast.general, forum["id"])


async def open_channel(open_page: OpenPage, name: str, client: Client, path: str) -> Page:
    assert client.token is not None
    page = await open_page(name, path, token=client.token)
    await expect(page.locator("miaou-messages, miaou-forum").first).to_be_visible()
    return page


async def test_threads_live_in_the_side_panel(
    open_page: OpenPage, console: Console, world: World
) -> None:
    path = f"/channels/{world.guild_id}/{world.general}"
    alice = await open_channel(open_page, "alice", world.alice, path)
    bob = await open_channel(open_page, "bob", world.bob, path)
    await expect(bob.get_by_role("heading", name="# general")).to_be_visible()

    # Bob looks at the channel's threads: none yet.
    await bob.get_by_role("button", name="Threads", exact=True).click()
    bob_panel = bob.get_by_role("complementary", name="Threads")
    await expect(bob_panel.get_by_text("No active thread.")).to_be_visible()

    # Alice starts a thread from her message; it opens beside the channel.
    question = alice.locator("li.message", has_text="what do cats dream of?")
    await question.hover()
    await question.get_by_role("button", name="Create a thread").click()
    dialog = alice.get_by_role("dialog", name="Create a thread")
    await dialog.get_by_label("Thread name").fill("Cat dreams")
    await dialog.get_by_role("button", name="Create thread").click()
    alice_thread = alice.get_by_role("complementary", name="Thread")
    await expect(alice_thread.get_by_role("heading", name="Cat dreams", exact=True)).to_be_visible()
    await expect(alice_thread.get_by_role("button", name="Leave the thread")).to_be_visible()

    # Bob's channel shows the thread under the message it started from (MESSAGE_UPDATE).
    starter = bob.locator("main li.message", has_text="what do cats dream of?")
    thread_link = starter.get_by_role("button", name=re.compile(r"^Open the thread Cat dreams"))
    await expect(thread_link).to_be_visible()

    # It appears live in Bob's list; he opens it, joins, and writes in it.
    entry = bob_panel.get_by_role("button", name="Cat dreams")
    await expect(entry).to_be_visible()
    await entry.click()
    bob_thread = bob.get_by_role("complementary", name="Thread")
    await expect(bob_thread.get_by_role("heading", name="Cat dreams", exact=True)).to_be_visible()
    await expect(bob_thread.get_by_label("Message Cat dreams")).to_be_focused()
    await bob_thread.get_by_role("button", name="Join the thread").click()
    await expect(bob_thread.get_by_role("button", name="Leave the thread")).to_be_visible()
    box = bob_thread.get_by_label("Message Cat dreams")
    await box.fill("mice, surely")
    await box.press("Enter")
    mice = alice_thread.locator("li.message", has_text="mice, surely")
    await expect(mice).to_be_visible()
    # Alice replies in the thread: its own composer takes the reply and the keyboard.
    await mice.hover()
    await mice.get_by_role("button", name="Reply").click()
    alice_box = alice_thread.get_by_label("Message Cat dreams")
    await expect(alice_box).to_be_focused()
    await alice.keyboard.type("or fish")
    await alice.keyboard.press("Enter")
    answer = bob_thread.locator("li.message", has_text="or fish")
    await expect(answer.locator(".reply-preview")).to_contain_text("mice, surely")
    # The link under the starter counts the thread's messages as they come.
    alice_starter = alice.locator("main li.message", has_text="what do cats dream of?")
    await expect(alice_starter.locator(".thread-link")).to_contain_text("2 messages")
    # The channel itself does not show the thread's messages.
    await expect(alice.locator("main li.message", has_text="mice, surely")).to_have_count(0)
    await screenshot(bob, "20-thread-panel")

    # Alice archives it; Bob sees so live, and it moves to the archived list.
    await alice_thread.get_by_role("button", name="Archive the thread").click()
    await expect(alice_thread.get_by_role("button", name="Unarchive the thread")).to_be_visible()
    await expect(bob_thread.get_by_text("This thread is archived")).to_be_visible()
    await bob_thread.get_by_role("button", name="Threads of #general").click()
    archived = bob.get_by_role("region", name="Archived")
    await expect(archived.get_by_role("button", name="Cat dreams")).to_be_visible()
    await screenshot(bob, "21-thread-list")
    threads = await world.bob.threads(world.general, archived="true")
    assert [t["name"] for t in threads] == ["Cat dreams"]
    # The link under the starter opens it again, after a reload too (history carries it).
    await bob.reload()
    await thread_link.click()
    await expect(bob_thread.get_by_role("heading", name="Cat dreams", exact=True)).to_be_visible()
    await expect(bob_thread.locator("li.message", has_text="or fish")).to_be_visible()
    await bob_thread.get_by_role("button", name="Threads of #general").click()

    # A standalone thread, from the list.
    await alice.get_by_role("button", name="Threads", exact=True).click()
    alice_list = alice.get_by_role("complementary", name="Threads")
    await alice_list.get_by_role("button", name="New thread").click()
    new = alice.get_by_role("dialog", name="New thread")
    await new.get_by_label("Thread name").fill("Naps")
    await new.get_by_role("button", name="Create thread").click()
    await expect(alice_thread.get_by_role("heading", name="Naps", exact=True)).to_be_visible()
    active = bob.get_by_role("region", name="Active")
    await expect(active.get_by_role("button", name="Naps")).to_be_visible()

    # At phone width the panel covers the channel; closing it gives the channel back.
    await bob.set_viewport_size(PHONE)
    await expect(active.get_by_role("button", name="Naps")).to_be_in_viewport()
    await expect(bob.locator(".pane-nav")).not_to_be_in_viewport()  # slid away
    await screenshot(bob, "23-thread-list-phone")
    await bob_panel.get_by_role("button", name="Close the panel").click()
    await expect(bob_panel).to_have_count(0)
    await expect(bob.get_by_label("Message #general")).to_be_focused()
    console.check()


async def test_forum_posts_with_tags(open_page: OpenPage, console: Console, world: World) -> None:
    path = f"/channels/{world.guild_id}/{world.forum}"
    alice = await open_channel(open_page, "alice", world.alice, path)
    bob = await open_channel(open_page, "bob", world.bob, path)
    await expect(bob.get_by_text("No post yet")).to_be_visible()

    await alice.get_by_role("button", name="New post").click()
    dialog = alice.get_by_role("dialog", name="New post in ideas")
    await dialog.get_by_label("Post title").fill("Heated beds for everyone")
    await dialog.get_by_label("Message").fill("Winter is coming, **cats** are cold.")
    await dialog.get_by_label("proposal").check()
    await dialog.get_by_role("button", name="Post").click()
    post = alice.get_by_role("complementary", name="Thread")
    await expect(
        post.get_by_role("heading", name="Heated beds for everyone", exact=True)
    ).to_be_visible()
    await expect(post.locator("li.message strong")).to_have_text("cats")

    # Bob sees the post live, with its tag; filtering by another tag hides it.
    posts = bob.get_by_role("list", name="Posts in ideas")
    item = posts.get_by_role("button", name="Heated beds for everyone")
    await expect(item).to_be_visible()
    await expect(item.locator(".tag")).to_have_text("proposal")
    await bob.get_by_role("button", name="question", exact=True).click()
    await expect(bob.get_by_text("No post has this tag.")).to_be_visible()
    await bob.get_by_role("button", name="proposal", exact=True).click()
    await expect(item).to_be_visible()
    await screenshot(bob, "22-forum")
    await item.click()
    await expect(
        bob.get_by_role("complementary", name="Thread").locator("li.message", has_text="cold")
    ).to_be_visible()
    console.check()
