"""REST route for guild message search, at Discord's path and with its parameter names.

Query values are parsed here rather than by Litestar so that every bad one is reported in
one 400 with an entry per field, in the same words whatever the mistake.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, get
from litestar.params import FromPath, FromQuery

from miaou.chat.search import (
    HAS_VALUES,
    LIMIT_MAX,
    OFFSET_MAX,
    SearchFilters,
    SearchResults,
    search_guild,
)
from miaou.errors import InvalidInput
from miaou.http.auth import node_of, principal
from miaou.http.params import AnyRequest, Who, path_id
from miaou.ids import parse_id

CONTENT_MAX = 1024
CHANNELS_MAX = 500
_BOOLS = {"true": True, "1": True, "false": False, "0": False}
_SORTS: dict[str, Any] = {"relevance": "relevance", "timestamp": "time"}


class _Problems:
    """Collects field errors so that one answer names every bad parameter."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, problem: str) -> None:
        self.errors.setdefault(name, []).append(problem)

    def id(self, text: str | None, name: str) -> int | None:
        if text is None:
            return None
        value = parse_id(text)
        if value is None:
            self.add(name, "is not an id")
        return value

    def number(self, text: str | None, name: str, low: int, high: int, default: int) -> int:
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            self.add(name, f"must be an integer from {low} to {high}")
            return default
        return value

    def choice(self, text: str | None, name: str, choices: dict[str, Any], default: Any) -> Any:
        if text is None:
            return default
        if text.lower() not in choices:
            self.add(name, "must be one of " + ", ".join(sorted(choices)))
            return default
        return choices[text.lower()]


def parse_filters(
    content: str | None,
    author_id: str | None,
    mentions: str | None,
    has: list[str] | None,
    channel_id: list[str] | None,
    min_id: str | None,
    max_id: str | None,
    pinned: str | None,
    sort_by: str | None,
    sort_order: str | None,
    limit: str | None,
    offset: str | None,
) -> SearchFilters:
    check = _Problems()
    if content is not None and len(content) > CONTENT_MAX:
        check.add("content", f"must be at most {CONTENT_MAX} characters")
    wanted_has = frozenset(h.lower() for h in has or ())
    if wanted_has - HAS_VALUES:
        check.add("has", "must be among " + ", ".join(sorted(HAS_VALUES)))
    channel_ids = None
    if channel_id:
        if len(channel_id) > CHANNELS_MAX:
            check.add("channel_id", f"at most {CHANNELS_MAX} channels")
        parsed = [check.id(c, "channel_id") for c in channel_id]
        channel_ids = frozenset(c for c in parsed if c is not None)
    filters = SearchFilters(
        terms=content,
        author_id=check.id(author_id, "author_id"),
        mentions=check.id(mentions, "mentions"),
        has=wanted_has,
        after=check.id(min_id, "min_id"),
        before=check.id(max_id, "max_id"),
        pinned=check.choice(pinned, "pinned", _BOOLS, None),
        sort=check.choice(sort_by, "sort_by", _SORTS, "time"),
        descending=check.choice(sort_order, "sort_order", {"asc": False, "desc": True}, True),
        limit=check.number(limit, "limit", 1, LIMIT_MAX, LIMIT_MAX),
        offset=check.number(offset, "offset", 0, OFFSET_MAX, 0),
        channel_ids=channel_ids,
    )
    if check.errors:
        raise InvalidInput("Invalid search parameters.", errors=check.errors)
    return filters


class SearchController(Controller):
    path = "/api/v1/guilds"
    tags = ["search"]
    dependencies = {"who": principal}

    @get("/{guild_id:str}/messages/search", summary="Search a guild's messages")
    async def search(
        self,
        request: AnyRequest,
        who: Who,
        guild_id: FromPath[str],
        content: FromQuery[str | None] = None,
        author_id: FromQuery[str | None] = None,
        mentions: FromQuery[str | None] = None,
        has: FromQuery[list[str] | None] = None,
        channel_id: FromQuery[list[str] | None] = None,
        min_id: FromQuery[str | None] = None,
        max_id: FromQuery[str | None] = None,
        pinned: FromQuery[str | None] = None,
        sort_by: FromQuery[str | None] = None,
        sort_order: FromQuery[str | None] = None,
        limit: FromQuery[str | None] = None,
        offset: FromQuery[str | None] = None,
    ) -> SearchResults:
        """Only channels the caller can read (VIEW_CHANNEL and READ_MESSAGE_HISTORY) are
        searched; `channel_id` (repeatable) narrows them. Every word of `content` must occur;
        `has` (repeatable): `attachment`, `link`; `min_id`/`max_id`: exclusive bounds;
        `sort_by`: `timestamp` (default) or `relevance`; `sort_order`: `desc` (default) or
        `asc`; `limit` 1 to 25, `offset` 0 to 4975. `total_results` counts the matches up
        to 5,000; by relevance, the newest 500 matches are ranked (and counted)."""
        filters = parse_filters(
            content, author_id, mentions, has, channel_id, min_id, max_id,
            pinned, sort_by, sort_order, limit, offset,
        )  # fmt: skip
        return await search_guild(
            node_of(request).db, who.user_id, path_id(guild_id, "guild"), filters
        )


routes = [SearchController]
