"""What a message's content mentions, read from its markdown source. Pure: no I/O.

Recognised, as Discord writes them:

- users ``<@123>`` and ``<@!123>`` (the legacy nickname form), roles ``<@&123>``,
  channels ``<#123>``;
- ``@everyone`` and ``@here``;
- ``http://`` and ``https://`` links, for the ``has_link`` search flag.

Nothing inside code counts: fenced blocks (a run of three or more backticks up to the next
such run) and inline spans (a run of N backticks up to the next run of exactly N, as
CommonMark has it) are skipped, because Discord shows them as literal text. A backslash
before a mention escapes it (``\\@everyone`` and ``\\<@123>`` are shown, not pinged).

Whether a mention takes effect (permissions, mentionable roles, who can see the channel) is
the service's business; this module only says what the text asks for. Lists keep the order
of first appearance, hold no duplicates and are capped, so a message cannot make the server
resolve thousands of ids.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

import msgspec

from miaou.ids import parse_id

MAX_USER_MENTIONS = 100
MAX_ROLE_MENTIONS = 100
MAX_CHANNEL_MENTIONS = 100

_BACKTICKS = re.compile(r"`+")
_FENCE = 3
# ``(?<!\\)``: a backslash escapes the mention. Ids are up to 20 digits; parse_id bounds them.
_USER = re.compile(r"(?<!\\)<@!?([0-9]{1,20})>")
_ROLE = re.compile(r"(?<!\\)<@&([0-9]{1,20})>")
_CHANNEL = re.compile(r"(?<!\\)<#([0-9]{1,20})>")
# Not inside a word ("me@everyone.example" is an address, not a ping) and not escaped.
_EVERYONE = re.compile(r"(?<![\\\w])@everyone\b")
_HERE = re.compile(r"(?<![\\\w])@here\b")
_LINK = re.compile(r"\bhttps?://[^\s<>]+", re.IGNORECASE)


class ParsedMentions(msgspec.Struct, frozen=True, kw_only=True):
    users: tuple[int, ...] = ()
    roles: tuple[int, ...] = ()
    channels: tuple[int, ...] = ()
    everyone: bool = False
    here: bool = False
    has_link: bool = False


def code_spans(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of every code block and inline code span, in order, not overlapping.

    One pass over the backtick runs; the closing run is found by bisection in per-length
    position lists, so hostile input (many unclosed runs) stays O(n log n).
    """
    runs = [(m.start(), m.end() - m.start()) for m in _BACKTICKS.finditer(text)]
    by_length: dict[int, list[int]] = {}
    fences: list[int] = []
    for index, (_, length) in enumerate(runs):
        by_length.setdefault(length, []).append(index)
        if length >= _FENCE:
            fences.append(index)
    spans: list[tuple[int, int]] = []
    index = 0
    while index < len(runs):
        start, length = runs[index]
        close = None
        if length >= _FENCE:
            close = _next(fences, index)
        if close is None:
            close = _next(by_length[length], index)
        if close is None:
            index += 1  # unclosed: the backticks are literal text
            continue
        close_start, close_length = runs[close]
        spans.append((start, close_start + close_length))
        index = close + 1
    return spans


def _next(positions: list[int], after: int) -> int | None:
    at = bisect.bisect_right(positions, after)
    return positions[at] if at < len(positions) else None


def without_code(text: str) -> str:
    """``text`` with code replaced by spaces: offsets are kept, and no token can form across
    a removed span."""
    parts: list[str] = []
    last = 0
    for start, end in code_spans(text):
        parts += (text[last:start], " " * (end - start))
        last = end
    parts.append(text[last:])
    return "".join(parts)


def _ids(pattern: re.Pattern[str], text: str, cap: int) -> tuple[int, ...]:
    found: dict[int, None] = {}  # a dict keeps first-appearance order
    for match in pattern.finditer(text):
        value = parse_id(match[1])
        if value is not None:
            found[value] = None
            if len(found) >= cap:
                break
    return tuple(found)


def parse(content: str) -> ParsedMentions:
    text = without_code(content)
    return ParsedMentions(
        users=_ids(_USER, text, MAX_USER_MENTIONS),
        roles=_ids(_ROLE, text, MAX_ROLE_MENTIONS),
        channels=_ids(_CHANNEL, text, MAX_CHANNEL_MENTIONS),
        everyone=_EVERYONE.search(text) is not None,
        here=_HERE.search(text) is not None,
        has_link=_LINK.search(text) is not None,
    )


def dedupe(values: Iterable[int]) -> list[int]:
    """Order-keeping de-duplication, for lists assembled from several sources."""
    return list(dict.fromkeys(values))
