"""Guild settings in the browser, with a member watching in another: the overview, channels
(create, edit, reorder, delete), permission overwrites and roles that hide and show
channels live, giving a member a hoisted role; invites, bans with a reason and the audit
log with its filters. A member without permissions is offered no settings."""

from __future__ import annotations

import asyncio
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
    bob_id: str
    guild_id: str
    general: str


@pytest.fixture
async def world(node: RunningNode) -> AsyncIterator[World]:
    async with guild_with(node, "Guild Hall", "alice", "bob") as cast:
        yield World(*cast.clients, cast.ids[1], cast.guild_id, cast.general)


async def open_both(open_page: OpenPage, world: World) -> tuple[Page, Page]:
    assert world.alice.token is not None and world.bob.token is not None
    path = f"/channels/{world.guild_id}/{world.general}"
    alice = await open_page("alice", path, token=world.alice.token)
    bob = await open_page("bob", path, token=world.bob.token)
    await expect(alice.get_by_role("heading", name="# general")).to_be_visible()
    await expect(bob.get_by_role("heading", name="# general")).to_be_visible()
    return alice, bob


# Controls without an accessible name (as test_live.py checks the chat screen).
UNNAMED_CONTROLS = """() => [...document.querySelectorAll(
    'button, a[href], input, select, textarea')]
  .filter((el) => !el.closest('[hidden]') && el.type !== 'file')
  .filter((el) => !(el.getAttribute('aria-label') || el.labels?.length
    || el.textContent.trim() || el.getAttribute('title')))
  .map((el) => el.outerHTML.slice(0, 80))"""


def sidebar_channel(page: Page, name: str) -> Locator:
    return page.locator("miaou-channels a.channel-link", has_text=name)


async def test_channels_roles_and_overwrites_live(
    open_page: OpenPage, console: Console, world: World
) -> None:
    alice, bob = await open_both(open_page, world)
    # Bob's client never reads the channel list again below: the node tells it which
    # channels a rule change shows or hides (CHANNEL_CREATE / CHANNEL_DELETE made for him).
    listings: list[str] = []
    listing = f"/api/v1/guilds/{world.guild_id}/channels"
    bob.on("request", lambda r: listings.append(r.url) if r.url.endswith(listing) else None)
    # Bob may manage nothing: no settings for him.
    await expect(bob.get_by_role("link", name="Settings of Guild Hall")).to_have_count(0)

    # Overview: a new name, live for Bob.
    await alice.get_by_role("link", name="Settings of Guild Hall").click()
    await expect(alice.get_by_role("heading", name="Overview")).to_be_visible()
    await alice.get_by_label("Guild name").fill("Great Hall")
    await alice.get_by_label("Description").fill("Where cats meet.")
    await alice.get_by_role("button", name="Save changes").click()
    await expect(alice.get_by_text("Saved.")).to_be_visible()
    await expect(bob.locator("miaou-channels .sidebar-header h2")).to_have_text("Great Hall")
    await screenshot(alice, "40-settings-overview")

    # Channels: create #staff and #tmp; Bob sees them arrive; edit, move, delete.
    await alice.get_by_role("link", name="Channels", exact=True).click()
    for name in ("staff", "tmp"):
        await alice.get_by_role("button", name="Create a channel", exact=True).click()
        dialog = alice.get_by_role("dialog", name="Create a channel")
        await dialog.get_by_label("Name").fill(name)
        await dialog.get_by_role("button", name="Create").click()
        await expect(sidebar_channel(bob, name)).to_be_visible()
    await alice.get_by_role("button", name="Edit #staff").click()
    edit = alice.get_by_role("dialog", name="Edit #staff")
    await edit.get_by_label("Topic").fill("for the staff")
    await edit.get_by_label("Slow mode").select_option("10")
    await edit.get_by_label("Age-restricted (NSFW)").check()
    await edit.get_by_role("button", name="Save").click()
    await expect(alice.locator("li.admin-row", has_text="#staff")).to_contain_text("for the staff")
    staff = next(c for c in await world.alice.channels(world.guild_id) if c["name"] == "staff")
    assert (staff["topic"], staff["rate_limit_per_user"], staff["nsfw"]) == (
        "for the staff",
        10,
        True,
    )
    rows = alice.locator("li.admin-row.is-channel strong")
    await expect(rows).to_have_text(["#general", "#staff", "#tmp"])
    await alice.get_by_role("button", name="Move up #tmp").click()
    await expect(rows).to_have_text(["#general", "#tmp", "#staff"])
    bob_links = bob.locator("miaou-channels a.channel-link .name")
    await expect(bob_links).to_have_text(["general", "tmp", "staff"])
    await alice.get_by_role("button", name="Delete #tmp").click()
    delete = alice.get_by_role("dialog", name="Delete channel")
    await delete.get_by_label("Reason").fill("  only a test  ")  # trimmed
    await delete.get_by_role("button", name="Delete").click()
    await expect(sidebar_channel(bob, "tmp")).to_have_count(0)
    await screenshot(alice, "41-settings-channels")

    # An overwrite hides #staff from @everyone: gone from Bob's list at once.
    await alice.get_by_role("button", name="Permissions of #staff").click()
    perms = alice.get_by_role("dialog", name="Permissions of #staff")
    view = perms.get_by_role("radiogroup", name="VIEW_CHANNEL")
    await view.get_by_text("Deny").click()
    await perms.get_by_role("button", name="Save").click()
    await expect(perms.get_by_text("Saved.")).to_be_visible()
    await expect(sidebar_channel(bob, "staff")).to_have_count(0)
    await screenshot(alice, "42-settings-overwrites")
    assert await alice.evaluate(UNNAMED_CONTROLS) == []
    await alice.keyboard.press("Escape")

    # A hoisted role "Crew", given to Bob from his card; #staff lets Crew in: he sees it.
    await alice.get_by_role("link", name="Roles", exact=True).click()
    await alice.get_by_role("button", name="Create a role").click()
    form = alice.get_by_role("form", name="Edit new role")
    await form.get_by_label("Role name").fill("Crew")
    await form.get_by_label("Show members with this role apart").check()
    await form.get_by_label("Coloured name").check()
    await form.get_by_label("MANAGE_MESSAGES").check()
    await form.get_by_role("button", name="Save role").click()
    await expect(alice.get_by_role("button", name="Crew · shown apart")).to_be_visible()
    roles = {r["name"]: r for r in await world.alice.roles(world.guild_id)}
    assert int(roles["Crew"]["permissions"]) == 1 << 13 and roles["Crew"]["hoist"]
    # A second role comes in just above @everyone; moved up, it goes above Crew.
    await alice.get_by_role("button", name="Create a role").click()
    form = alice.get_by_role("form", name="Edit new role")
    await form.get_by_label("Role name").fill("Elder")
    await form.get_by_role("button", name="Save role").click()
    picks = alice.locator("ol.role-list .role-pick")
    await expect(picks).to_have_text(["Crew · shown apart", "Elder", "@everyone"])
    await alice.get_by_role("button", name="Move up Elder").click()
    await expect(picks).to_have_text(["Elder", "Crew · shown apart", "@everyone"])
    ranked = sorted(await world.alice.roles(world.guild_id), key=lambda r: -r["position"])
    assert [r["name"] for r in ranked] == ["Elder", "Crew", "@everyone"]
    await screenshot(alice, "43-settings-roles")
    assert await alice.evaluate(UNNAMED_CONTROLS) == []
    await (
        alice.get_by_role("form", name="Edit Elder")
        .get_by_role("button", name="Delete role")
        .click()
    )
    delete = alice.get_by_role("dialog", name="Delete role")
    await delete.get_by_label("Reason").fill("one role is enough")
    await delete.get_by_role("button", name="Delete").click()
    await expect(picks).to_have_text(["Crew · shown apart", "@everyone"])
    await alice.locator("miaou-members").get_by_role("button", name="bob").click()
    card = alice.get_by_role("dialog", name="bob")
    await card.get_by_label("Reason for role changes").fill("crew duty, ünïcode & 100%")
    await card.get_by_label("Crew").check()
    await expect(card.get_by_text("Gave the role Crew.")).to_be_visible()
    await alice.keyboard.press("Escape")
    await expect(bob.locator("miaou-members h2.member-group").first).to_have_text("Crew — 1")
    await alice.get_by_role("link", name="Channels", exact=True).click()
    await alice.get_by_role("button", name="Permissions of #staff").click()
    perms = alice.get_by_role("dialog", name="Permissions of #staff")
    await perms.get_by_label("Add a role or a member").select_option(label="Crew")
    await perms.get_by_role("radiogroup", name="VIEW_CHANNEL").get_by_text("Allow").click()
    await perms.get_by_role("button", name="Save").click()
    await expect(perms.get_by_text("Saved.")).to_be_visible()
    await alice.keyboard.press("Escape")
    await expect(sidebar_channel(bob, "staff")).to_be_visible()

    # A role change that takes VIEW_CHANNEL from @everyone: Bob keeps only #staff (Crew's);
    # the channel he was reading is gone. Given back, it returns.
    await alice.get_by_role("link", name="Roles", exact=True).click()
    everyone = alice.get_by_role("form", name="Edit @everyone")
    await everyone.get_by_label("VIEW_CHANNEL").uncheck()
    await everyone.get_by_role("button", name="Save role").click()
    await expect(everyone.get_by_text("Saved.")).to_be_visible()
    await expect(sidebar_channel(bob, "general")).to_have_count(0)
    await expect(bob.get_by_role("heading", name="Nothing here")).to_be_visible()
    await expect(sidebar_channel(bob, "staff")).to_be_visible()
    await everyone.get_by_label("VIEW_CHANNEL").check()
    await everyone.get_by_role("button", name="Save role").click()
    await expect(sidebar_channel(bob, "general")).to_be_visible()
    # None of it sent Bob's client to the node for its channel list (every member's would
    # come at once), nor does a change that shows nothing (ADD_REACTIONS off for @everyone).
    await everyone.get_by_label("ADD_REACTIONS").uncheck()
    await everyone.get_by_role("button", name="Save role").click()
    for _ in range(100):  # until the node has it (the form's "Saved." is the last save's)
        roles = {r["id"]: r for r in await world.alice.roles(world.guild_id)}
        if not int(roles[world.guild_id]["permissions"]) & (1 << 6):  # ADD_REACTIONS
            break
        await asyncio.sleep(0.05)
    await bob.wait_for_timeout(600)  # past the 150-500 ms the client used to wait
    assert listings == []
    await everyone.get_by_label("ADD_REACTIONS").check()
    await everyone.get_by_role("button", name="Save role").click()

    # A member's own overwrite: Bob may read #staff but not write there.
    await sidebar_channel(bob, "staff").click()
    bob_box = bob.get_by_label("Message #staff")
    await expect(bob_box).to_be_enabled()
    await alice.get_by_role("link", name="Channels", exact=True).click()
    await alice.get_by_role("button", name="Permissions of #staff").click()
    perms = alice.get_by_role("dialog", name="Permissions of #staff")
    await perms.get_by_label("Add a role or a member").select_option(label="bob")
    await (
        perms.get_by_role("radiogroup", name="SEND_MESSAGES", exact=True)
        .get_by_text("Deny")
        .click()
    )
    await perms.get_by_role("button", name="Save").click()
    await expect(perms.get_by_text("Saved.")).to_be_visible()
    await expect(bob_box).to_be_disabled()
    await expect(bob_box).to_have_attribute("placeholder", "You cannot send messages here.")
    staff = next(c for c in await world.alice.channels(world.guild_id) if c["name"] == "staff")
    mine = [o for o in staff["permission_overwrites"] if o["id"] == world.bob_id]
    assert mine == [{"id": world.bob_id, "type": 1, "allow": "0", "deny": str(1 << 11)}]

    # Kicked with a reason: Bob's guild goes; the reasons typed above are in the audit log
    # (sent URL-encoded in X-Audit-Log-Reason).
    await alice.goto(f"/channels/{world.guild_id}/{world.general}")
    bob_guild = bob.locator("miaou-guilds a.guild-icon[title='Great Hall']")
    await expect(bob_guild).to_have_count(1)
    await alice.locator("miaou-members").get_by_role("button", name="bob").click()
    await alice.get_by_role("dialog", name="bob").get_by_role("button", name="Kick").click()
    kick = alice.get_by_role("dialog", name="Kick bob")
    await kick.get_by_label("Reason").fill("nap time")
    await screenshot(alice, "47-kick-with-reason")
    await kick.get_by_role("button", name="Kick").click()
    await expect(bob_guild).to_have_count(0)
    await alice.goto(f"/channels/{world.guild_id}/settings/audit-log")
    entries = alice.locator("li.audit-entry")
    for action, reason in [
        ("MEMBER_KICK", "nap time"),
        ("MEMBER_ROLE_UPDATE", "crew duty, ünïcode & 100%"),
        ("ROLE_DELETE", "one role is enough"),
        ("CHANNEL_DELETE", "only a test"),
    ]:
        await expect(entries.filter(has_text=f"· {action}").locator(".audit-reason")).to_have_text(
            f"Reason: {reason}"
        )
    console.check()


async def test_invites_bans_and_audit_log(
    open_page: OpenPage, console: Console, world: World
) -> None:
    alice, bob = await open_both(open_page, world)
    base = f"/channels/{world.guild_id}/settings"

    # Invites: one for 5 uses and an hour; listed; revoked.
    await alice.goto(f"{base}/invites")
    await expect(alice.get_by_role("heading", name="Invites")).to_be_visible()
    table = alice.locator("table.admin-table tbody tr")
    await expect(table).to_have_count(1)  # the fixture's
    await alice.get_by_label("Expires after").select_option("3600")
    await alice.get_by_label("Uses").select_option("5")
    await alice.get_by_role("button", name="Create invite").click()
    await expect(alice.get_by_text("New invite:")).to_be_visible()
    await expect(table).to_have_count(2)
    made = table.filter(has_text="0 / 5")
    await expect(made).to_have_count(1)
    code = await made.get_attribute("data-code")
    await screenshot(alice, "44-settings-invites")
    await made.get_by_role("button", name=f"Revoke the invite {code}").click()
    await expect(table).to_have_count(1)
    assert code not in {i["code"] for i in await world.alice.guild_invites(world.guild_id)}

    # Bans: from the member list, with a reason; Bob's guild goes; unban from the list.
    await alice.goto(f"/channels/{world.guild_id}/{world.general}")
    await alice.locator("miaou-members").get_by_role("button", name="bob").click()
    await alice.get_by_role("dialog", name="bob").get_by_role("button", name="Ban").click()
    ban = alice.get_by_role("dialog", name="Ban bob")
    await ban.get_by_label("Reason").fill("too much tuna talk")
    await ban.get_by_role("button", name="Ban").click()
    await expect(bob.locator("miaou-guilds a.guild-icon[title='Guild Hall']")).to_have_count(0)
    await alice.goto(f"{base}/bans")
    banned = alice.locator("li.admin-row", has_text="bob")
    await expect(banned).to_contain_text("Reason: too much tuna talk")
    await screenshot(alice, "45-settings-bans")
    await banned.get_by_role("button", name="Unban bob").click()
    await expect(alice.get_by_text("Nobody is banned.")).to_be_visible()
    assert await world.alice.bans(world.guild_id) == []

    # The audit log: everything above, newest first; filtered by action, and by who.
    await alice.goto(f"{base}/audit-log")
    entries = alice.locator("li.audit-entry")
    await expect(entries.first).to_contain_text("alice unbanned a member")
    await expect(entries.filter(has_text="banned a member")).to_have_count(2)
    await expect(
        alice.locator("li.audit-entry", has_text="Reason: too much tuna talk")
    ).to_have_count(1)
    await alice.get_by_label("Action").select_option(label="INVITE_DELETE")
    await expect(entries).to_have_count(1)
    await expect(entries.first).to_contain_text("revoked an invite")
    await alice.get_by_label("Action").select_option(label="All actions")
    await alice.get_by_label("Done by").select_option(label="alice")
    await expect(entries.first).to_contain_text("alice")
    await screenshot(alice, "46-settings-audit-log")
    assert await alice.evaluate(UNNAMED_CONTROLS) == []

    # Pages of 50: sixty more changes, read further with "Older entries".
    for i in range(60):
        await world.alice.update_channel(world.general, topic=f"topic {i}")
    await alice.reload()
    await expect(entries).to_have_count(50)
    await expect(entries.first).to_contain_text("topic 58 → topic 59")
    total = len(await world.alice.audit_log(world.guild_id, limit=100))
    await alice.get_by_role("button", name="Older entries").click()
    await expect(entries).to_have_count(total)
    await expect(entries.last).to_contain_text("created an invite")
    await expect(alice.get_by_role("button", name="Older entries")).to_be_hidden()
    console.check()
