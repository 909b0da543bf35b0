"""Two people in two browsers: register, create a guild, invite, join, and talk live:
typing, messages with markdown and mentions, replies, reactions, edits with their history,
deletes, an image upload with its progress bar. Then log out and in again."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.async_api import Locator, Page, expect

from conftest import PASSWORD, Console, OpenPage, register, screenshot

pytestmark = pytest.mark.database_kinds("sqlite")


def noise_png(path: Path, side: int = 640) -> Path:
    """An image that does not compress: about 1.2 MB, so its upload takes a moment."""
    image = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    out = io.BytesIO()
    image.save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def message(page: Page, text: str) -> Locator:
    return page.locator("li.message", has_text=text)


async def test_two_people_chat_live(open_page: OpenPage, console: Console, tmp_path: Path) -> None:
    alice = await open_page("alice")
    await expect(alice.get_by_role("heading", name="Welcome back")).to_be_visible()
    await screenshot(alice, "01-login")
    await register(alice, "alice")
    await expect(alice.get_by_role("heading", name="Welcome, alice")).to_be_visible()

    # Alice creates a guild: she lands in its #general.
    await alice.locator("miaou-guilds").get_by_role("button", name="Create or join a guild").click()
    await alice.get_by_role("button", name="Create a guild").click()
    await alice.get_by_label("Guild name").fill("Cat Lovers")
    await alice.get_by_role("button", name="Create", exact=True).click()
    await expect(alice.get_by_role("heading", name="# general")).to_be_visible()
    await expect(alice.get_by_role("heading", name="Welcome to #general")).to_be_visible()

    # ... and makes an invite link.
    await alice.get_by_role("button", name="Invite people to Cat Lovers").click()
    link = alice.get_by_label("Invite link")
    await expect(link).to_have_value(re.compile("/invite/"))
    await screenshot(alice, "02-invite-dialog")
    invite_url = await link.input_value()
    await alice.keyboard.press("Escape")

    # Bob follows the link: he registers, sees what he is invited to, and joins.
    bob = await open_page("bob", invite_url)
    await expect(bob.get_by_text("You have been invited to a guild")).to_be_visible()
    await register(bob, "bob")
    await expect(bob.get_by_role("heading", name="Cat Lovers")).to_be_visible()
    await screenshot(bob, "03-invite-accept")
    # The join's GUILD_JOIN carries the guild and its channels: Bob's client does not read
    # the guild, its channel list or the read states over REST.
    guild_reads: list[str] = []
    guild_read = re.compile(r"/api/v1/(guilds/\d+(/channels)?|users/@me/read-states)$")
    bob.on("request", lambda r: guild_reads.append(r.url) if guild_read.search(r.url) else None)
    await bob.get_by_role("button", name="Join Cat Lovers").click()
    await expect(bob.get_by_role("heading", name="# general")).to_be_visible()

    # Alice sees Bob arrive in the member list.
    members = alice.locator("miaou-members")
    await expect(members.get_by_text("bob", exact=True)).to_be_visible()
    await expect(bob.locator("miaou-members").get_by_text("alice", exact=True)).to_be_visible()
    assert guild_reads == []

    # Bob types: Alice sees it; then he sends, and she reads it live, rendered.
    bob_box = bob.get_by_label("Message #general")
    await bob_box.fill("hello **Alice**, `code` and ||a secret||")
    await expect(alice.get_by_text("bob is typing…")).to_be_visible()
    await bob_box.press("Enter")
    first = message(alice, "hello")
    await expect(first.locator("strong")).to_have_text("Alice")
    await expect(first.locator("code")).to_have_text("code")
    await expect(first.locator(".spoiler")).to_have_attribute("aria-expanded", "false")
    await expect(alice.get_by_text("bob is typing…")).to_be_hidden()

    # Alice replies, mentioning Bob; he sees the reply and his name highlighted.
    await first.hover()
    await first.get_by_role("button", name="Reply").click()
    await expect(alice.get_by_text("Replying to")).to_be_visible()
    alice_box = alice.get_by_label("Message #general")
    await alice_box.fill("@bob welcome! see https://example.com")
    await alice_box.press("Enter")
    reply = message(bob, "welcome!")
    await expect(reply).to_have_class("message mentioned")
    await expect(reply.locator(".mention.mention-me")).to_have_text("@bob")
    await expect(reply.locator(".reply-preview")).to_contain_text("@bob")
    link_el = reply.get_by_role("link", name="https://example.com")
    await expect(link_el).to_have_attribute("rel", "noopener noreferrer")
    await expect(link_el).to_have_attribute("target", "_blank")

    # Bob reacts to the reply; Alice sees it and adds hers.
    await reply.hover()
    await reply.get_by_role("button", name="Add a reaction").click()
    await bob.get_by_role("button", name="React with 👍").click()
    reply_id = await message(alice, "welcome!").get_attribute("data-id")
    alice_reply = alice.locator(f"li.message[data-id='{reply_id}']")
    chip = alice_reply.locator("button.reaction")
    await expect(chip).to_have_attribute("aria-pressed", "false")
    await expect(chip.locator(".count")).to_have_text("1")
    await chip.click()
    await expect(chip).to_have_attribute("aria-pressed", "true")
    await expect(chip.locator(".count")).to_have_text("2")
    await expect(reply.locator("button.reaction .count")).to_have_text("2")

    # Alice edits her message; Bob sees the new text and the edit history.
    await alice_reply.hover()
    await alice_reply.get_by_role("button", name="Edit").click()
    editor = alice.get_by_label("Edit message")
    await editor.fill("@bob welcome aboard! *purr*")
    await editor.press("Enter")
    edited = message(bob, "welcome aboard!")
    await expect(edited.locator("em")).to_have_text("purr")
    await edited.get_by_role("button", name="Edited: show the edit history").click()
    history = bob.get_by_role("dialog", name="Edit history")
    await expect(history.get_by_text("Original")).to_be_visible()
    await expect(history).to_contain_text("welcome! see https://example.com")
    await screenshot(bob, "04-edit-history")
    await bob.keyboard.press("Escape")

    # Bob uploads an image, slowly enough to watch the progress bar; Alice sees it.
    cdp = await bob.context.new_cdp_session(bob)
    await cdp.send("Network.enable")
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 20, "downloadThroughput": -1, "uploadThroughput": 600_000},
    )
    await bob.locator("input.file-input").set_input_files(str(noise_png(tmp_path / "kitten.png")))
    await expect(bob.locator(".file-chip")).to_contain_text("kitten.png")
    await bob_box.fill("a kitten")
    await bob_box.press("Enter")
    progress = bob.locator("progress.upload")
    await expect(progress).to_be_visible()
    await bob.wait_for_function("() => document.querySelector('progress.upload')?.value >= 20")
    await screenshot(bob, "05-upload-progress")
    await expect(progress).to_be_hidden(timeout=20_000)
    await cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    image = message(alice, "a kitten").locator("img")
    await expect(image).to_have_attribute("src", re.compile("^blob:"))
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0

    # Alice deletes Bob's first message? She may not: only her own. She deletes hers.
    await alice_reply.hover()
    await alice_reply.get_by_role("button", name="Delete").click()
    await (
        alice.get_by_role("dialog", name="Delete message")
        .get_by_role("button", name="Delete")
        .click()
    )
    await expect(message(bob, "welcome aboard!")).to_have_count(0)
    await expect(message(alice, "welcome aboard!")).to_have_count(0)
    await expect(message(bob, "hello")).to_have_count(1)
    await screenshot(alice, "06-channel-desktop")

    # Log out, and back in.
    await bob.get_by_role("button", name="Log out").click()
    await expect(bob.get_by_role("heading", name="Welcome back")).to_be_visible()
    await bob.get_by_label("Username").fill("bob")
    await bob.get_by_label("Password").fill(PASSWORD)
    await bob.get_by_role("button", name="Log in").click()
    await expect(bob.get_by_role("heading", name="# general")).to_be_visible()
    await expect(message(bob, "a kitten").locator("img")).to_have_attribute(
        "src", re.compile("^blob:")
    )
    console.check()
