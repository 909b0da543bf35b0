"""Accounts over HTTP, through the SDK, against a real node (SQLite, and PostgreSQL in CI)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event, select, update

import miaou
from miaou.accounts import service
from miaou.accounts.models import InviteCreate
from miaou.accounts.tokens import token_hash
from miaou.db.metadata import sessions, users
from miaou.errors import Forbidden, Unauthorized
from miaou.sdk import ApiError, Client
from miaou.server import RunningNode

PASSWORD = "correct horse battery"


async def test_register_login_me_logout_then_token_refused(make_client) -> None:
    alice = make_client()
    registered = await alice.register("Alice", PASSWORD, display_name="Alice A.")
    assert registered.user.username == "Alice"
    assert registered.token.startswith("mia_")

    other = make_client()
    login = await other.login("alice", PASSWORD)  # case-insensitive
    assert login.user.id == registered.user.id
    assert login.token != registered.token

    me = await other.me()
    assert (me.id, me.username, me.display_name) == (registered.user.id, "Alice", "Alice A.")

    await other.logout()
    stale = make_client(token=login.token)
    with pytest.raises(ApiError) as refused:
        await stale.me()
    assert refused.value.status == 401
    assert refused.value.code == "invalid_token"
    # The other session is untouched.
    assert (await alice.me()).id == registered.user.id


async def test_ids_are_strings_and_users_are_public_to_members(make_client) -> None:
    alice, bob = make_client(), make_client()
    a = await alice.register("alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    seen = await bob.user(a.user.id)
    assert seen.username == "alice" and isinstance(seen.id, str)
    with pytest.raises(ApiError) as missing:
        await bob.user("123")
    assert (missing.value.status, missing.value.code) == (404, "unknown_user")
    with pytest.raises(ApiError) as bad:
        await bob.user("not-a-number")
    assert bad.value.status == 404


async def test_a_user_is_found_by_exact_username(make_client, node) -> None:
    alice, bob = make_client(), make_client()
    a = await alice.register("Alice", PASSWORD)
    await bob.register("bob", PASSWORD)
    for asked in ("alice", "ALICE", " Alice ", "\uff21\uff4c\uff49\uff43\uff45"):
        found = await bob.user_named(asked)
        assert (found.id, found.username) == (a.user.id, "Alice")
    for asked in ("ali", "nobody"):  # no prefix search
        with pytest.raises(ApiError) as missing:
            await bob.user_named(asked)
        assert (missing.value.status, missing.value.code) == (404, "unknown_user")
    with pytest.raises(ApiError) as bad:
        await bob.user_named("x" * 65)
    assert bad.value.status == 400
    with pytest.raises(ApiError) as anonymous:
        await make_client().user_named("alice")
    assert anonymous.value.status == 401
    await node.node.accounts.set_disabled("alice", True)
    with pytest.raises(ApiError) as disabled:
        await bob.user_named("alice")
    assert disabled.value.status == 404


@pytest.mark.parametrize("name", ["ALICE", "alice", "\uff21\uff4c\uff49\uff43\uff45"])
async def test_duplicate_usernames_refused_ignoring_case_and_width(make_client, name) -> None:
    await make_client().register("Alice", PASSWORD)
    with pytest.raises(ApiError) as dup:
        await make_client().register(name, PASSWORD)
    assert dup.value.status == 409
    assert dup.value.code == "username_taken"
    assert dup.value.errors == {"username": ["is taken"]}


async def test_concurrent_registrations_of_one_name_create_one_account(make_client) -> None:
    results = await asyncio.gather(
        *(make_client().register("Racer", PASSWORD) for i in range(6)),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, ApiError)]
    assert len(ok) == 1
    assert len(refused) == 5 and all(r.code == "username_taken" for r in refused)


@pytest.mark.parametrize(
    ("username", "problem"),
    [
        ("a", "must be 2 to 32 characters long"),
        ("x" * 33, "must be 2 to 32 characters long"),
        ("has space", "may contain only letters, digits, '_', '.' and '-'"),
        ("admin", "is reserved"),
        ("Everyone", "is reserved"),
        ("..dots", "may not start or end with '.' or contain '..'"),
    ],
)
async def test_invalid_usernames_get_the_documented_shape(node, username, problem) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        response = await http.post(
            "/api/v1/auth/register", json={"username": username, "password": PASSWORD}
        )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_username"
    assert isinstance(body["message"], str) and body["message"]
    assert problem in body["errors"]["username"]


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("short", "must be at least 8 characters long"),
        ("        ", "may not be only spaces"),
        ("Carol-the-Great", "may not be the username"),
        ("x" * 1025, "must be at most 1024 characters long"),
    ],
)
async def test_weak_passwords_refused(node, password, problem) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        response = await http.post(
            "/api/v1/auth/register", json={"username": "carol-the-great", "password": password}
        )
    assert response.status_code == 400
    assert response.json()["code"] == "weak_password"
    assert problem in response.json()["errors"]["password"]


async def test_failed_registration_changes_nothing(make_client) -> None:
    with pytest.raises(ApiError):
        await make_client().register("dave", "short")
    # The name is still free.
    assert (await make_client().register("dave", PASSWORD)).user.username == "dave"


async def test_bad_bodies_refused_with_field_errors(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        unknown = await http.post(
            "/api/v1/auth/register", json={"username": "erin", "password": PASSWORD, "admin": True}
        )
        missing = await http.post("/api/v1/auth/login", json={"username": "erin"})
        not_json = await http.post(
            "/api/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"}
        )
    assert unknown.status_code == 400
    assert unknown.json()["errors"] == {"admin": ["is not a known field"]}
    assert missing.status_code == 400 and "password" in str(missing.json()["errors"])
    assert not_json.status_code == 400 and not_json.json()["code"] == "invalid_input"


async def test_wrong_password_and_unknown_user_look_the_same(make_client) -> None:
    await make_client().register("frank", PASSWORD)
    errors = []
    for username, password in (("frank", "wrong password"), ("nobody", PASSWORD)):
        with pytest.raises(ApiError) as refused:
            await make_client().login(username, password)
        errors.append((refused.value.status, refused.value.code, refused.value.message))
    assert errors[0] == errors[1] == (401, "invalid_credentials", "Wrong username or password.")


async def test_missing_and_malformed_tokens(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        none = await http.get("/api/v1/users/@me")
        basic = await http.get("/api/v1/users/@me", headers={"authorization": "Basic abc"})
        junk = await http.get("/api/v1/users/@me", headers={"authorization": "Bearer junk"})
    assert (none.status_code, none.json()["code"]) == (401, "missing_token")
    assert (basic.status_code, basic.json()["code"]) == (401, "missing_token")
    assert (junk.status_code, junk.json()["code"]) == (401, "invalid_token")


async def test_profile_update(client: Client) -> None:
    await client.register("gina", PASSWORD)
    me = await client.update_me(display_name="  Gina  ", bio="I play the oud.")
    assert (me.display_name, me.bio) == ("Gina", "I play the oud.")
    me = await client.update_me(display_name=None)
    assert me.display_name is None and me.bio == "I play the oud."
    with pytest.raises(ApiError) as too_long:
        await client.update_me(bio="x" * 501)
    assert too_long.value.status == 400 and "bio" in too_long.value.errors
    with pytest.raises(ApiError) as unknown:
        await client.update_me(username="other")
    assert unknown.value.errors == {"username": ["is not a known field"]}
    assert (await client.me()).bio == "I play the oud."


async def test_sessions_list_and_revoke(make_client) -> None:
    first = make_client()
    await first.register("hugo", PASSWORD)
    second = make_client()
    login = await second.login("hugo", PASSWORD)
    sessions = await first.sessions()
    assert len(sessions) == 2
    assert [s.current for s in sessions].count(True) == 1
    assert (await first.session(login.session_id)).current is False

    await first.revoke_session(login.session_id)
    with pytest.raises(ApiError) as revoked:
        await second.me()
    assert revoked.value.status == 401
    with pytest.raises(ApiError) as again:
        await first.revoke_session(login.session_id)
    assert again.value.status == 404
    assert len(await first.sessions()) == 1


async def test_cannot_see_or_revoke_someone_elses_session(make_client) -> None:
    ivan, judy = make_client(), make_client()
    await ivan.register("ivan", PASSWORD)
    judy_auth = await judy.register("judy", PASSWORD)
    with pytest.raises(ApiError) as hidden:
        await ivan.session(judy_auth.session_id)
    assert hidden.value.status == 404
    with pytest.raises(ApiError):
        await ivan.revoke_session(judy_auth.session_id)
    assert (await judy.me()).username == "judy"


async def test_password_change_revokes_other_sessions(make_client) -> None:
    main, other = make_client(), make_client()
    await main.register("kim", PASSWORD)
    await other.login("kim", PASSWORD)
    with pytest.raises(ApiError) as wrong:
        await main.change_password("not it at all", "a new passphrase")
    assert wrong.value.errors == {"current_password": ["is wrong"]}
    with pytest.raises(ApiError) as weak:
        await main.change_password(PASSWORD, "short")
    assert "new_password" in weak.value.errors

    assert await main.change_password(PASSWORD, "a new passphrase") == 1
    assert (await main.me()).username == "kim"  # this session survives
    with pytest.raises(ApiError):
        await other.me()
    with pytest.raises(ApiError):
        await make_client().login("kim", PASSWORD)
    await make_client().login("kim", "a new passphrase")


@pytest.mark.parametrize("mode", ["open", "invite", "closed"])
async def test_the_node_says_how_to_register_without_a_token(start_node, mode) -> None:
    node = await start_node(registration=mode, max_attachment_bytes=3_000_000)
    async with Client(node.url) as client:
        info = await client.node_info()
    assert info["registration"] == mode
    assert info["version"] == miaou.__version__
    assert info["limits"]["attachment_bytes"] == 3_000_000
    assert info["limits"]["message_characters"] == 4000
    assert info["limits"]["attachments_per_message"] == 10


async def test_registration_closed(start_node) -> None:
    node = await start_node(registration="closed")
    async with Client(node.url, rate_limit_retries=0) as client:
        with pytest.raises(ApiError) as closed:
            await client.register("lena", PASSWORD)
    assert (closed.value.status, closed.value.code) == (403, "registration_closed")


async def test_registration_by_invite(start_node) -> None:
    node = await start_node(registration="invite")
    code = (
        await node.node.invites.create(InviteCreate(max_uses=1, expires_in=3600), created_by=None)
    ).code
    async with (
        Client(node.url, rate_limit_retries=0) as a,
        Client(node.url) as b,
        Client(node.url) as c,
    ):
        with pytest.raises(ApiError) as needed:
            await a.register("mia", PASSWORD)
        assert needed.value.code == "invite_required"
        with pytest.raises(ApiError) as wrong:
            await a.register("mia", PASSWORD, invite_code="nope")
        assert wrong.value.code == "invalid_invite"
        await b.register("mia", PASSWORD, invite_code=code)
        with pytest.raises(ApiError) as used_up:
            await c.register("nils", PASSWORD, invite_code=code)
        assert used_up.value.code == "invalid_invite"
        # The refused attempt did not create the account.
        with pytest.raises(ApiError):
            await c.login("nils", PASSWORD)


async def test_sessions_survive_a_node_restart(start_node, make_client) -> None:
    first = await start_node()
    async with Client(first.url) as client:
        auth = await client.register("olga", PASSWORD)
    await first.stop()
    second = await start_node()
    async with Client(second.url, token=auth.token) as client:
        assert (await client.me()).username == "olga"
    async with Client(second.url) as client:
        await client.login("olga", PASSWORD)


# -- the token cache (miaou.accounts.token_cache) -----------------------------------------


def cached(node: RunningNode, token: str) -> bool:
    return token_hash(token) in node.node.accounts.token_cache


@contextlib.contextmanager
def statements(node: RunningNode) -> Iterator[list[str]]:
    """Every SQL statement the node sends to its database inside the block."""
    seen: list[str] = []
    engine = node.node.db.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_cached_authentication_reads_no_database(node, client) -> None:
    auth = await client.register("pia", PASSWORD)
    accounts = node.node.accounts
    with statements(node) as first:
        who = await accounts.authenticate(auth.token)
    assert any("sessions" in s for s in first)  # the counter sees the cache miss's read
    for _ in range(3):
        with statements(node) as again:
            assert await accounts.authenticate(auth.token) == who
        assert again == []
    assert str(who.user_id) == auth.user.id and str(who.session_id) == auth.session_id


async def test_auth_cache_seconds_zero_reads_the_database_every_time(start_node) -> None:
    node = await start_node(auth_cache_seconds=0)
    async with Client(node.url) as client:
        auth = await client.register("pia", PASSWORD)
        await client.me()
    assert not cached(node, auth.token)
    with statements(node) as seen:
        await node.node.accounts.authenticate(auth.token)
    assert any("sessions" in s for s in seen)


async def test_logout_refuses_a_cached_token_at_once(node, make_client) -> None:
    main, other = make_client(), make_client()
    await main.register("quinn", PASSWORD)
    login = await other.login("quinn", PASSWORD)
    await main.me()
    await other.me()
    assert cached(node, login.token) and cached(node, main.token)
    await other.logout()
    with pytest.raises(ApiError) as refused:
        await make_client(token=login.token).me()
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")
    assert cached(node, main.token)  # only the logged-out session was dropped
    assert (await main.me()).username == "quinn"


async def test_revoked_session_refuses_a_cached_token_at_once(node, make_client) -> None:
    first, second = make_client(), make_client()
    await first.register("rita", PASSWORD)
    login = await second.login("rita", PASSWORD)
    await second.me()
    assert cached(node, login.token)
    await first.revoke_session(login.session_id)
    with pytest.raises(ApiError) as refused:
        await second.me()
    assert (refused.value.status, refused.value.code) == (401, "invalid_token")


async def test_password_change_refuses_cached_other_sessions_at_once(node, make_client) -> None:
    main, other, third = make_client(), make_client(), make_client()
    await main.register("sven", PASSWORD)
    await other.login("sven", PASSWORD)
    await third.login("sven", PASSWORD)
    for c in (main, other, third):
        await c.me()
        assert cached(node, c.token)
    assert await main.change_password(PASSWORD, "a new passphrase") == 2
    for c in (other, third):
        with pytest.raises(ApiError) as refused:
            await c.me()
        assert refused.value.status == 401
    assert cached(node, main.token)  # the session that changed it stays
    assert (await main.me()).username == "sven"


async def test_disabling_refuses_a_cached_token_at_once(node, make_client) -> None:
    client = make_client()
    auth = await client.register("tove", PASSWORD)
    await client.me()
    assert cached(node, auth.token)
    await node.node.accounts.set_disabled("tove", True)
    with pytest.raises(ApiError) as refused:
        await client.me()
    assert refused.value.status == 401  # disabling ended the session
    with pytest.raises(ApiError) as login:
        await make_client().login("tove", PASSWORD)
    assert login.value.code == "account_disabled"
    await node.node.accounts.set_disabled("tove", False)
    again = make_client()
    await again.login("tove", PASSWORD)
    assert (await again.me()).username == "tove"


async def test_pruned_sessions_refuse_a_cached_token_at_once(start_node) -> None:
    node = await start_node(max_sessions_per_user=1)
    async with Client(node.url) as old, Client(node.url) as new:
        await old.register("ulla", PASSWORD)
        await old.me()
        assert cached(node, old.token or "")
        await new.login("ulla", PASSWORD)  # over the cap: the older session goes
        with pytest.raises(ApiError) as refused:
            await old.me()
        assert refused.value.status == 401
        assert (await new.me()).username == "ulla"


async def test_a_cached_entry_still_enforces_the_disabled_flag(node, client) -> None:
    auth = await client.register("vera", PASSWORD)
    # Disabled behind this node's back (sessions kept), so the cache is filled from it.
    async with node.node.db.write() as conn:
        await conn.execute(
            update(users).where(users.c.id == int(auth.user.id)).values(disabled_at=1)
        )
    accounts = node.node.accounts
    with pytest.raises(Forbidden):
        await accounts.authenticate(auth.token)
    assert cached(node, auth.token)
    with statements(node) as seen, pytest.raises(Forbidden):
        await accounts.authenticate(auth.token)
    assert seen == []


async def test_a_cached_session_is_touched_and_expires_when_idle(node, client, monkeypatch) -> None:
    auth = await client.register("wim", PASSWORD)
    accounts = node.node.accounts
    await accounts.authenticate(auth.token)
    entry = accounts.token_cache.get(token_hash(auth.token))
    assert entry is not None
    later = entry.last_used_at + service.TOUCH_EVERY_MS + 1
    monkeypatch.setattr(service, "now_ms", lambda: later)
    with statements(node) as touch:
        await accounts.authenticate(auth.token)
    updates = [s for s in touch if s.lstrip().upper().startswith("UPDATE")]
    assert len(updates) == 1 and "sessions" in updates[0]
    assert not any("JOIN" in s.upper() for s in touch)  # the session was not read again
    async with node.node.db.read() as conn:
        stored = (
            await conn.execute(
                select(sessions.c.last_used_at).where(sessions.c.id == int(auth.session_id))
            )
        ).scalar_one()
    assert stored == later
    with statements(node) as quiet:  # the cached copy was touched too: no second write
        await accounts.authenticate(auth.token)
    assert quiet == []
    idle = later + node.node.settings.session_idle_days * 86_400_000 + 1
    monkeypatch.setattr(service, "now_ms", lambda: idle)
    with statements(node) as expired, pytest.raises(Unauthorized):
        await accounts.authenticate(auth.token)
    assert expired == []


async def test_other_nodes_refuse_a_revoked_token_within_the_ttl(start_node) -> None:
    a = await start_node(worker_id=1)
    b = await start_node(worker_id=2)
    clock = [0.0]
    b.node.accounts.token_cache.clock = lambda: clock[0]
    ttl = b.node.settings.auth_cache_seconds
    async with Client(a.url) as on_a, Client(b.url, rate_limit_retries=0) as on_b:
        await on_a.register("xia", PASSWORD)
        on_b.token = on_a.token
        await on_a.me()
        await on_b.me()
        await on_a.logout()
        async with Client(a.url, token=on_b.token) as again_on_a:
            with pytest.raises(ApiError):
                await again_on_a.me()
        # Node b was not told: it trusts its cached entry for up to the TTL ...
        clock[0] += ttl - 0.01
        assert (await on_b.me()).username == "xia"
        # ... and no longer.
        clock[0] += 0.01
        with pytest.raises(ApiError) as refused:
            await on_b.me()
        assert refused.value.status == 401
