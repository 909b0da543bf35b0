"""The fast path for JSON sends (``miaou.chat.fast_sends``) answers as the route does.

The same script of sends, good and bad, runs twice on one node: once with a
``content-length`` body (which the fast path takes) and once chunked (which it leaves to
the route). Both transcripts must be the same once ids and times are numbered: statuses,
bodies, headers, and which answers name the same message. ``FastSends.answered`` tells
which path answered.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog.testing
from chat_fixtures import GuildFixture, Person, add_channel, create_guild, join, person

from miaou.chat.fast_sends import ROUTE
from miaou.ratelimit import RateLimiter, RedisStore
from miaou.server import RunningNode

# Differ from answer to answer whatever serves them; X-RateLimit-* values are compared on
# their own below (the two scripts share the per-IP bucket).
PER_ANSWER = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset",
              "x-ratelimit-reset-after"}  # fmt: skip


class Numbering:
    """Ids and millisecond times replaced by their order of first appearance, so that two
    transcripts compare equal when they name things in the same pattern."""

    def __init__(self, prefix: str) -> None:
        self.seen: dict[object, str] = {}
        self.prefix = prefix  # of the usernames of one transcript

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):  # retry_after counts down between the two sends
            return {k: round(v) if k == "retry_after" else self(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self(v) for v in value]
        if isinstance(value, str):  # ids stand alone or in text (<#channel>)
            value = re.sub(r"\d{12,20}", lambda m: self.number(m[0]), value)
            return value.replace(self.prefix, "<name>_")
        if isinstance(value, int) and not isinstance(value, bool) and value > 10**12:
            return "<ms>"
        return value

    def number(self, raw: str) -> str:
        return self.seen.setdefault(raw, f"<id{len(self.seen)}>")


@pytest.fixture
async def http(node: RunningNode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url) as client:
        yield client


class Poster:
    """Posts sends the one way or the other; answers are (status, numbered body, headers)."""

    def __init__(self, http: httpx.AsyncClient, chunked: bool) -> None:
        self.http = http
        self.chunked = chunked
        self.name = "full" if chunked else "fast"  # same length: same content-length
        self.numbering = Numbering(f"{self.name}_")
        self.last_body: Any = None  # the last answer's body and headers as sent
        self.last_headers: httpx.Headers | None = None

    async def __call__(
        self, who: Person | None, channel: object, body: object, **headers: str
    ) -> tuple[int, Any, dict[str, str]]:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        if who is not None:
            headers.setdefault("authorization", f"Bearer {who.client.token}")
        headers.setdefault("content-type", "application/json")
        content: Any = _chunked(raw) if self.chunked else raw
        answer = await self.http.post(f"/api/v1/channels/{channel}/messages", content=content,
                                      headers=headers)  # fmt: skip
        self.last_body, self.last_headers = answer.json(), answer.headers
        kept = {k: v for k, v in answer.headers.items() if k not in PER_ANSWER}
        return answer.status_code, self.numbering(self.last_body), kept


async def _chunked(raw: bytes) -> AsyncIterator[bytes]:
    yield raw


async def script(node: RunningNode, make_client: Any, post: Poster) -> list[Any]:
    name = post.name
    owner = await person(make_client, f"{name}_owner")
    member = await person(make_client, f"{name}_member")
    outsider = await person(make_client, f"{name}_outsider")
    guild: GuildFixture = await create_guild(node, owner)
    await join(node, guild, member)
    slow = await add_channel(node, guild.id, slowmode=60)
    channel = guild.channel
    first = await post(member, channel, {"content": "hello **there**"})
    reply = {"content": "re", "message_reference": {"message_id": post.last_body["id"]}}
    return [
        first,
        await post(member, channel, {"content": "once", "nonce": "n-1"}),
        await post(member, channel, {"content": "once", "nonce": "n-1"}),  # the same message
        await post(member, channel, {"content": "int nonce", "nonce": 12345}),
        await post(owner, channel, reply),
        await post(member, channel, {"content": f"@everyone look <#{channel}>"}),
        await post(member, channel, {"content": "x" * 4001}),
        await post(member, channel, {"content": ""}),
        await post(member, channel, {"content": 5}),
        await post(member, channel, {"content": "x", "unknown": 1}),
        await post(member, channel, b'{"content": "cut'),
        await post(member, channel, b""),
        await post(None, channel, {"content": "who?"}),
        await post(None, channel, {"content": "who?"}, authorization="Bearer nonsense"),
        await post(None, channel, {"content": "who?"}, authorization="Basic abc"),
        await post(outsider, channel, {"content": "let me in"}),
        await post(member, "abc", {"content": "where"}),
        await post(member, "999999999999", {"content": "where"}),
        await post(member, slow, {"content": "slow one"}),
        await post(member, slow, {"content": "slow two"}),  # 429 slowmode, Retry-After
    ]


async def test_the_fast_path_answers_as_the_route_does(
    node: RunningNode, make_client: Any, http: httpx.AsyncClient
) -> None:
    fast_sends = node.node.fast_sends
    transcripts = []
    for chunked in (False, True):
        before = fast_sends.answered
        transcript = await script(node, make_client, Poster(http, chunked))
        oks = sum(1 for status, _, _ in transcript if status == 200)
        assert fast_sends.answered - before == (0 if chunked else oks)
        transcripts.append(transcript)
    fast, route = transcripts
    for step, (a, b) in enumerate(zip(fast, route, strict=True)):
        assert a == b, f"step {step}"
    statuses = [status for status, _, _ in fast]
    assert statuses == [200, 200, 200, 200, 200, 200, 400, 400, 400, 400, 400, 400, 401, 401,
                        401, 404, 404, 404, 200, 429]  # fmt: skip
    assert fast[1][1]["id"] == fast[2][1]["id"]  # the nonce's first message, both times
    assert fast[4][1]["message_reference"]["message_id"] == fast[0][1]["id"]
    assert fast[-1][1]["code"] == "slowmode" and "retry-after" in fast[-1][2]
    assert fast[0][2]["x-ratelimit-limit"]  # the rate-limit headers are there


async def test_both_paths_draw_on_one_rate_limit_and_answer_429_alike(
    start_node: Any, make_client: Any
) -> None:
    node = await start_node(ratelimit={"api_per_user": "3/60"})
    async with httpx.AsyncClient(base_url=node.url) as http:
        owner = await person(lambda: make_client(node.url), "rl_owner")
        guild = await create_guild(node, owner)
        answers, remaining = [], []
        for chunked in (False, True, False, True, False):
            post = Poster(http, chunked)
            answers.append(await post(owner, guild.channel, {"content": "hi"}))
            assert post.last_headers is not None
            remaining.append(int(post.last_headers["x-ratelimit-remaining"]))
    assert [status for status, _, _ in answers] == [200, 200, 200, 429, 429]
    # One per-user bucket counts sends down whichever path takes them.
    assert remaining == [2, 1, 0, 0, 0]
    full, fast = answers[3], answers[4]
    assert fast[1]["code"] == "rate_limited" and int(fast[2]["retry-after"]) >= 1
    assert fast[2]["x-ratelimit-limit"] == "3"
    assert full[1]["code"] == fast[1]["code"]
    assert full[2].keys() == fast[2].keys()
    assert node.node.fast_sends.answered == 2


async def test_a_failure_of_ours_is_a_500_in_the_api_shape_and_logged(
    node: RunningNode, http: httpx.AsyncClient, owner: Person, guild: GuildFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    async def broken(*args: Any) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(node.node.messages, "send", broken)
    with structlog.testing.capture_logs() as logs:
        answers = [await Poster(http, chunked)(owner, guild.channel, {"content": "hi"})
                   for chunked in (False, True)]  # fmt: skip
    fast, full = answers
    assert fast[0] == full[0] == 500
    assert fast[1] == full[1] == {"code": "internal_error", "message": "Internal error.",
                                  "errors": {}}  # fmt: skip
    failures = [e for e in logs if e["event"] == "unhandled_error"]
    assert [(e["route"], e["error"]) for e in failures] == [(ROUTE, "RuntimeError")] * 2
    assert "the disk is on fire" not in fast[1]["message"]


async def test_a_rate_limit_store_that_is_down_is_a_503_both_ways(
    node: RunningNode, http: httpx.AsyncClient, owner: Person, guild: GuildFixture
) -> None:
    limits = node.node.rate_limits
    dead = RedisStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", max_attempts=1)
    limits.limiter = RateLimiter(dead, limits.limiter._policies)
    try:
        answers = [await Poster(http, chunked)(owner, guild.channel, {"content": "hi"})
                   for chunked in (False, True)]  # fmt: skip
    finally:
        await dead.close()
    fast, full = answers
    assert fast[0] == full[0] == 503
    assert fast[1] == full[1] and fast[1]["code"] == "unavailable"
    assert fast[2] == full[2]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_what_the_fast_path_leaves_to_the_route(
    node: RunningNode, http: httpx.AsyncClient, owner: Person, guild: GuildFixture
) -> None:
    answered = node.node.fast_sends.answered
    headers = {"authorization": f"Bearer {owner.client.token}"}
    path = f"/api/v1/channels/{guild.channel}/messages"
    with_file = await http.post(
        path, headers=headers, files={"files[0]": ("note.txt", b"a note", "text/plain")},
        data={"payload_json": json.dumps({"content": "with a file"})},
    )  # fmt: skip
    assert with_file.status_code == 200
    assert [a["filename"] for a in with_file.json()["attachments"]] == ["note.txt"]
    too_big = b'{"content": "' + b"x" * node.node.settings.max_body_bytes + b'"}'
    refused = await http.post(path, headers=headers, content=too_big)
    assert refused.status_code == 413 and refused.json()["code"] == "payload_too_large"
    assert node.node.fast_sends.answered == answered
    plain = await http.post(path, headers=headers, json={"content": "plain"})
    assert plain.status_code == 200 and node.node.fast_sends.answered == answered + 1
