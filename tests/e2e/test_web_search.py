"""Search from the channel header: words and filters (from:, has:, in:, mentions:, pinned:,
before:/after:), results in the side panel, paged and ordered; choosing a hit that is far
back in the history reads the history around it, shows it highlighted, and "Jump to
present" comes back. Pinned messages in their panel, pinning from a message."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from playwright.async_api import Page, expect

from conftest import Console, OpenPage, guild_with, screenshot
from miaou.sdk import Client
from miaou.server import RunningNode

pytestmark = pytest.mark.database_kinds("sqlite")
DASH = "\u2013"  # an en dash, as in the results' range (1 to 25)
FILLER = 120  # past a page (50), and past a jump's page and the next: "Jump to present"


@dataclass
class World:
    alice: Client
    bob: Client
    bob_id: str
    guild_id: str
    general: str
    random: str
    recipe_id: str


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[World]:
    async with guild_with(node, "Kitchen", "alice", "bob") as cast:
        alice, bob = cast.clients
        general, bob_id = cast.general, cast.ids[1]
        random = (await alice.create_channel(cast.guild_id, "random", parent_id=cast.category))[
            "id"
        ]
        recipe = await bob.send_message(general, "the tuna recipe: https://cats.example/tuna")
        await bob.send_message(general, "tuna is great, no link here")
        await alice.send_message(random, f"tuna for <@{bob_id}> in random")
        for i in range(FILLER):  # one by one: their ids are in this order
            await alice.send_message(general, f"kitten note {i}")
        yield World(alice, bob, bob_id, cast.guild_id, general, random, recipe.id)


async def search(page: Page, text: str) -> None:
    box = page.get_by_role("searchbox", name="Search messages")
    await box.fill(text)
    await box.press("Enter")


async def test_search_with_filters_and_jump(
    open_page: OpenPage, console: Console, world: World
) -> None:
    assert world.alice.token is not None
    page = await open_page(
        "alice", f"/channels/{world.guild_id}/{world.general}", token=world.alice.token
    )
    messages = page.locator("miaou-messages li.message")
    await expect(messages.last).to_contain_text(f"kitten note {FILLER - 1}")
    recipe = page.locator(f"li.message[data-id='{world.recipe_id}']")
    await expect(recipe).to_have_count(0)  # far back: not loaded

    panel = page.get_by_role("complementary", name="Search results")
    summary = panel.locator(".search-summary")
    hits = panel.locator("li.search-hit")

    # Words alone: three messages say tuna, in two channels.
    await search(page, "tuna")
    await expect(summary).to_contain_text("3 results")
    await expect(hits.filter(has_text="#random")).to_have_count(1)
    # From Bob, with a link: only the recipe.
    await search(page, "tuna from:bob has:link")
    await expect(summary).to_contain_text("1 result")
    await expect(hits).to_have_count(1)
    await expect(hits.first).to_contain_text("cats.example/tuna")
    await screenshot(page, "30-search-results")

    # Jump: the history is read around it; it shows highlighted, older stretch and all.
    await hits.first.get_by_role("button", name="Jump").click()
    await expect(recipe).to_be_visible()
    await expect(recipe).to_have_class("message jumped")
    await expect(page).to_have_url(f"/channels/{world.guild_id}/{world.general}/{world.recipe_id}")
    present = page.get_by_role("button", name="Jump to present")
    await expect(present).to_be_visible()
    await screenshot(page, "31-search-jump")
    await expect(messages.filter(has_text=f"kitten note {FILLER - 1}")).to_have_count(0)
    await present.click()
    await expect(messages.last).to_contain_text(f"kitten note {FILLER - 1}")
    await expect(present).to_be_hidden()

    # More filters: a channel, a mention, dates, pins.
    await search(page, "tuna in:random")
    await expect(summary).to_contain_text("1 result")
    await expect(hits.first).to_contain_text("in random")
    await search(page, "mentions:bob")
    await expect(hits.first).to_contain_text("in random")
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    await search(page, f"tuna after:{tomorrow}")
    await expect(summary).to_have_text("No results.")
    await search(page, f"tuna before:{tomorrow}")
    await expect(summary).to_contain_text("3 results")
    await search(page, "tuna pinned:true")
    await expect(summary).to_have_text("No results.")
    await search(page, "from:nobody")
    await expect(panel.get_by_role("alert")).to_have_text('No member is called "nobody".')

    # Pages of 25, and the order.
    await search(page, "kitten")
    await expect(summary).to_contain_text(f"{FILLER} results · 1{DASH}25")
    await expect(hits.first).to_contain_text(f"kitten note {FILLER - 1}")
    await panel.get_by_role("button", name="Next").click()
    await expect(summary).to_contain_text(f"26{DASH}50")
    await panel.get_by_label("Order").select_option("oldest")
    await expect(summary).to_contain_text(f"1{DASH}25")
    await expect(hits.first).to_contain_text("kitten note 0")

    # A message sent here is found at once.
    box = page.get_by_label("Message #general")
    await box.fill("fresh catnip delivery")
    await box.press("Enter")
    await expect(messages.last).to_contain_text("fresh catnip delivery")
    await search(page, "catnip from:alice in:general")
    await expect(summary).to_contain_text("1 result")
    await expect(hits.first).to_contain_text("fresh catnip delivery")
    console.check()


async def test_pins_panel(open_page: OpenPage, console: Console, world: World) -> None:
    assert world.alice.token is not None and world.bob.token is not None
    path = f"/channels/{world.guild_id}/{world.general}"
    alice = await open_page("alice", path, token=world.alice.token)
    bob = await open_page("bob", path, token=world.bob.token)
    await expect(bob.locator("li.message").last).to_contain_text(f"kitten note {FILLER - 1}")

    # Bob watches the pins; Alice (the owner) pins a message from its toolbar.
    await bob.get_by_role("button", name="Pinned messages").click()
    pins = bob.get_by_role("complementary", name="Pinned messages")
    await expect(pins.get_by_text("No pinned message yet.")).to_be_visible()
    note = alice.locator("li.message", has_text=f"kitten note {FILLER - 2}")
    await note.hover()
    await note.get_by_role("button", name="Pin", exact=True).click()
    await expect(pins.locator("li.pin-item")).to_contain_text(f"kitten note {FILLER - 2}")
    await expect(note.locator(".pinned-mark")).to_have_count(1)
    # Bob may not pin: no button for him.
    bob_note = bob.locator("li.message", has_text=f"kitten note {FILLER - 3}")
    await bob_note.hover()
    await expect(bob_note.get_by_role("button", name="Pin", exact=True)).to_have_count(0)
    await screenshot(bob, "32-pins")

    # An old message pinned through the SDK: the panel updates, and Jump reads around it.
    await world.alice.pin_message(world.general, world.recipe_id)
    item = pins.locator("li.pin-item", has_text="tuna recipe")
    await expect(item).to_be_visible()
    await item.get_by_role("button", name="Jump to the message of bob").click()
    await expect(bob.locator(f"li.message[data-id='{world.recipe_id}']")).to_be_visible()
    await alice.get_by_role("searchbox", name="Search messages").fill("pinned:true")
    await alice.get_by_role("searchbox", name="Search messages").press("Enter")
    results = alice.get_by_role("complementary", name="Search results")
    await expect(results.locator(".search-summary")).to_contain_text("2 results")
    console.check()
