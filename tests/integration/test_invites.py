"""Registration invites over the admin API: who may manage them, seats, expiry, revocation."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from miaou.sdk import ApiError, Client

PASSWORD = "correct horse battery"


async def admin_client(running) -> Client:
    await running.node.accounts.create_user("root-op", PASSWORD, is_admin=True)
    client = Client(running.url, rate_limit_retries=0)
    await client.login("root-op", PASSWORD)
    return client


async def test_only_admins_manage_invites(node, make_client) -> None:
    member = make_client()
    await member.register("member", PASSWORD)
    for call in (
        member.create_invite(max_uses=1),
        member.invites(),
        member.revoke_invite("whatever"),
    ):
        with pytest.raises(ApiError) as refused:
            await call
        assert (refused.value.status, refused.value.code) == (403, "admin_only")
    async with httpx.AsyncClient(base_url=node.url) as http:
        anonymous = await http.get("/api/v1/admin/invites")
    assert anonymous.status_code == 401


async def test_invite_lifecycle(start_node) -> None:
    running = await start_node(registration="invite")
    admin = await admin_client(running)
    try:
        invite = await admin.create_invite(max_uses=2, expires_in=3600)
        assert invite.uses == 0 and invite.max_uses == 2
        assert invite.expires_at is not None and invite.expires_at > invite.created_at
        me = await admin.me()
        assert invite.created_by == me.id

        async with Client(running.url, rate_limit_retries=0) as newcomer:
            await newcomer.register("newcomer", PASSWORD, invite_code=invite.code)
        listed = {i.code: i for i in await admin.invites()}
        assert listed[invite.code].uses == 1

        await admin.revoke_invite(invite.code)
        async with Client(running.url, rate_limit_retries=0) as late:
            with pytest.raises(ApiError) as refused:
                await late.register("latecomer", PASSWORD, invite_code=invite.code)
        assert refused.value.code == "invalid_invite"
        with pytest.raises(ApiError) as gone:
            await admin.revoke_invite(invite.code)
        assert (gone.value.status, gone.value.code) == (404, "unknown_invite")
    finally:
        await admin.close()


async def test_invalid_invite_settings_are_refused(start_node) -> None:
    running = await start_node()
    admin = await admin_client(running)
    try:
        with pytest.raises(ApiError) as bad:
            await admin.create_invite(max_uses=0, expires_in=10**9)
        assert bad.value.status == 400
        assert set(bad.value.errors) == {"max_uses", "expires_in"}
        assert await admin.invites() == []  # nothing was made
    finally:
        await admin.close()


async def test_invites_page_newest_first(start_node) -> None:
    running = await start_node()
    admin = await admin_client(running)
    try:
        made = []
        for _ in range(3):
            made.append((await admin.create_invite()).code)
            await asyncio.sleep(0.002)  # distinct creation times
        first = await admin.invites(limit=2)
        assert [i.code for i in first] == made[:0:-1]
        rest = await admin.invites(before=first[-1].created_at, limit=2)
        assert [i.code for i in rest] == made[:1]
    finally:
        await admin.close()
