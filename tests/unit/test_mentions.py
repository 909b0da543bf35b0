"""Mention parsing: pure rules, examples and properties."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.chat.mentions import (
    MAX_USER_MENTIONS,
    ParsedMentions,
    code_spans,
    dedupe,
    parse,
    without_code,
)


def test_every_kind_of_mention() -> None:
    parsed = parse("hi <@1> <@!2> <@&3> <#4> @everyone @here see https://example.org/x")
    assert parsed == ParsedMentions(
        users=(1, 2), roles=(3,), channels=(4,), everyone=True, here=True, has_link=True
    )


def test_nothing_to_see() -> None:
    assert parse("just words, an email me@everyone.example and <@abc> <@0> <@&>") == (
        ParsedMentions()
    )


def test_order_kept_and_duplicates_dropped() -> None:
    assert parse("<@3> <@1> <@!3> <@2> <@1>").users == (3, 1, 2)


def test_ids_out_of_range_are_ignored() -> None:
    too_big = 2**63
    assert parse(f"<@{too_big}> <@{too_big - 1}>").users == (too_big - 1,)


@pytest.mark.parametrize(
    "text",
    [
        "`@everyone`",
        "``<@1> ` still code``",
        "```\n@everyone <@1>\n```",
        "```py\n<@&3> https://x.example\n```",
        "```\n`` <@1> ` @here\n```",
        "\\@everyone \\<@1> \\@here",
    ],
)
def test_code_and_escapes_mention_nothing(text: str) -> None:
    assert parse(text) == ParsedMentions()


def test_a_fence_closes_at_the_next_fence_as_in_discord() -> None:
    # Discord's rule, not CommonMark's: the longer opening run does not need a longer close.
    assert parse("````\n``` <@1>\n").users == (1,)


def test_unclosed_backticks_are_literal() -> None:
    assert parse("` <@1> @everyone").users == (1,)
    assert parse("``` <@1>").users == (1,)
    assert parse("`` <@1> `").users == (1,)  # a run closes only with the same length
    assert parse("`a` <@1> `b`").users == (1,)  # between two spans


def test_code_spans() -> None:
    text = "a `b` c ```d``` e"
    assert [text[s:e] for s, e in code_spans(text)] == ["`b`", "```d```"]
    assert without_code(text) == "a     c         e"


def test_links() -> None:
    assert parse("HTTPS://EXAMPLE.ORG").has_link
    assert parse("<http://example.org>").has_link
    assert not parse("ftp://example.org http:// nope").has_link
    assert not parse("`https://example.org`").has_link


def test_user_mentions_are_capped() -> None:
    text = " ".join(f"<@{i}>" for i in range(1, 500))
    assert parse(text).users == tuple(range(1, MAX_USER_MENTIONS + 1))


def test_dedupe() -> None:
    assert dedupe([3, 1, 3, 2, 1]) == [3, 1, 2]


# -- properties ---------------------------------------------------------------------------
ids_ = st.integers(min_value=1, max_value=2**63 - 1)
plain = st.text(alphabet=st.characters(blacklist_characters="`<>@\\#"), max_size=30)


@given(st.text(max_size=300))
def test_never_fails_and_stays_bounded(text: str) -> None:
    parsed = parse(text)
    for values in (parsed.users, parsed.roles, parsed.channels):
        assert len(values) == len(set(values)) <= 100
        assert all(0 < v < 2**63 for v in values)


@given(st.text(max_size=200))
def test_masking_keeps_length_and_outside_text(text: str) -> None:
    masked = without_code(text)
    assert len(masked) == len(text)
    spans = code_spans(text)
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start  # ordered, not overlapping
    inside = {i for s, e in spans for i in range(s, e)}
    assert all(masked[i] == text[i] for i in range(len(text)) if i not in inside)


@given(st.lists(st.tuples(plain, ids_), max_size=10), plain)
def test_mentions_in_prose_are_found_in_order(parts: list[tuple[str, int]], tail: str) -> None:
    text = "".join(f"{words} <@{uid}> " for words, uid in parts) + tail
    assert parse(text).users == tuple(dedupe(uid for _, uid in parts))


@given(plain, ids_, st.sampled_from(["`{}`", "``{}``", "```\n{}\n```", "```py\n{}```"]), plain)
def test_mentions_inside_code_are_not_found(
    before: str, uid: int, wrapper: str, after: str
) -> None:
    inner = f"<@{uid}> <@&{uid}> <#{uid}> @everyone @here https://example.org"
    parsed = parse(before + " " + wrapper.format(inner) + " " + after)
    assert parsed == ParsedMentions()
