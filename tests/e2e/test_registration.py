"""The registration form asks the node how it takes new accounts (``GET /api/v1/node``)
before anyone types: the invite-code field up front on an ``invite`` node, a note and no
submit on a ``closed`` one."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from conftest import PASSWORD, Console, OpenPage
from miaou.accounts.models import InviteCreate
from miaou.server import RunningNode

pytestmark = pytest.mark.database_kinds("sqlite")


@pytest.fixture(params=["invite", "closed"])
async def node(start_node: Any, request: pytest.FixtureRequest) -> RunningNode:
    started: RunningNode = await start_node(
        registration=request.param, ratelimit={"enabled": False}
    )
    return started


async def test_the_form_follows_the_registration_mode(
    node: RunningNode, open_page: OpenPage, console: Console
) -> None:
    page = await open_page("newcomer", "/register")
    await expect(page.get_by_role("heading", name="Create an account")).to_be_visible()
    submit = page.get_by_role("button", name="Create account")
    if node.node.settings.registration == "closed":
        await expect(page.get_by_role("note")).to_contain_text("not taking new accounts")
        await expect(submit).to_be_disabled()
        await expect(page.get_by_label("Registration invite code")).to_have_count(0)
        console.check()
        return
    # An invite node: the code is asked for at once, and what was typed survives.
    code_box = page.get_by_label("Registration invite code")
    await expect(code_box).to_be_visible()
    await page.get_by_label("Username").fill("nora")
    await page.get_by_label("Password").fill(PASSWORD)
    invite = await node.node.invites.create(
        InviteCreate(max_uses=1, expires_in=3600), created_by=None
    )
    await code_box.fill(invite.code)
    await submit.click()
    await expect(page.get_by_role("heading", name="Welcome, nora")).to_be_visible()
    console.check()
