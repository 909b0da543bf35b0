"""User search terms become FTS5 expressions that cannot be syntax: checked against SQLite's
FTS5 itself (in memory), with the tokenizer the migration uses."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.chat.search import MAX_TOKENS, fts5_query, search_tokens


@pytest.fixture(scope="module")
def fts() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE VIRTUAL TABLE t USING fts5(content, tokenize='unicode61 remove_diacritics 2')"
    )
    conn.executemany(
        "INSERT INTO t (rowid, content) VALUES (?, ?)",
        [(1, "the fox and the dog"), (2, "Ça va, café crème?"), (3, "don't near me")],
    )
    yield conn
    conn.close()


def matches(conn: sqlite3.Connection, terms: str) -> list[int]:
    query = fts5_query(search_tokens(terms))
    rows = conn.execute("SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (query,))
    return [row[0] for row in rows]


def test_tokens_drop_what_indexes_nothing() -> None:
    assert search_tokens(None) == []
    assert search_tokens("  \t ") == []
    assert search_tokens("fox -- ( ) 😺 dog") == ["fox", "dog"]
    assert search_tokens("a\x00b\x1fc") == ["a", "b", "c"]  # NUL would break PostgreSQL
    assert search_tokens("fox\ud800") == ["fox"]  # a lone surrogate cannot be encoded
    assert len(search_tokens("w " * 100)) == MAX_TOKENS


def test_every_token_is_a_quoted_phrase() -> None:
    assert fts5_query(["fox", "dog"]) == '"fox" "dog"'
    assert fts5_query(['say"hi']) == '"say""hi"'
    assert fts5_query(["NEAR(a", "b)"]) == '"NEAR(a" "b)"'
    assert fts5_query([]) == '""'  # matches nothing, instead of a syntax error


@pytest.mark.parametrize(
    ("terms", "rows"),
    [
        ("FOX", [1]), ("fox dog", [1]), ("fox cat", []), ("-fox", [1]), ("fox*", [1]),
        ("fox OR cat", []), ("NOT fox", []), ("NEAR(fox dog)", []), ("near", [3]),
        ("cafe", [2]), ("CAFÉ ça", [2]), ("don't", [3]), ('"the fox"', [1]),
        ("content:fox", []), ("😺", []),
    ],
)  # fmt: skip
def test_operators_are_words(fts: sqlite3.Connection, terms: str, rows: list[int]) -> None:
    assert matches(fts, terms) == rows


@given(st.text(max_size=200))
def test_no_input_is_an_fts5_error(terms: str) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE VIRTUAL TABLE t USING fts5(content, tokenize='unicode61')")
    try:
        matches(conn, terms)  # raises sqlite3.OperationalError on a syntax error
    finally:
        conn.close()
