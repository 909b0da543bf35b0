"""Pure account rules: username normalisation and validation, passwords, profile fields."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from miaou.accounts.models import (
    RESERVED_USERNAMES,
    clean_bio,
    clean_display_name,
    username_key,
    validate_password,
    validate_username,
)
from miaou.errors import InvalidInput


@pytest.mark.parametrize(
    ("raw", "display", "key"),
    [
        ("Alice", "Alice", "alice"),
        ("  bob  ", "bob", "bob"),
        ("\uff21\uff4c\uff49\uff43\uff45", "Alice", "alice"),  # full-width -> NFKC
        ("Straße", "Straße", "strasse"),  # casefold, not lower
        ("zoë.music", "zoë.music", "zoë.music"),
        ("Δημήτρης", "Δημήτρης", "δημήτρησ"),  # final sigma folds to the medial one
    ],
)
def test_valid_usernames_normalise(raw: str, display: str, key: str) -> None:
    assert validate_username(raw) == (display, key)


@pytest.mark.parametrize(
    "raw",
    [
        "a",
        "",
        "x" * 33,
        "no spaces",
        "semi;colon",
        ".lead",
        "trail.",
        "dou..ble",
        "ADMIN",
        "Everyone",
        "@me",
        "emoji😺",
    ],
)
def test_invalid_usernames_refused_with_field_errors(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        validate_username(raw)
    assert error.value.code == "invalid_username"
    assert error.value.errors["username"]


@given(st.sampled_from(sorted(RESERVED_USERNAMES)), st.randoms())
def test_every_reserved_name_is_refused_in_any_case(name: str, rnd) -> None:  # type: ignore[no-untyped-def]
    mixed = "".join(c.upper() if rnd.random() < 0.5 else c for c in name)
    with pytest.raises(InvalidInput):
        validate_username(mixed)


@given(st.text(min_size=1, max_size=40))
def test_username_key_is_idempotent_and_case_blind(text: str) -> None:
    key = username_key(text)
    assert username_key(key) == key
    assert username_key(text.upper()) == username_key(text.lower()) or not text.isascii()


@given(st.text(max_size=60))
def test_validated_usernames_respect_the_length_bounds(text: str) -> None:
    try:
        display, _ = validate_username(text)
    except InvalidInput:
        return
    assert 2 <= len(display) <= 32


def test_passwords() -> None:
    validate_password("eight ch")
    for weak, reason in (
        ("seven c", "at least 8"),
        (" " * 10, "only spaces"),
        ("x" * 1025, "at most 1024"),
    ):
        with pytest.raises(InvalidInput) as error:
            validate_password(weak)
        assert any(reason in p for p in error.value.errors["password"])
    with pytest.raises(InvalidInput):
        validate_password("TheUserName", username="theusername")
    with pytest.raises(InvalidInput) as named:
        validate_password("short", field="new_password")
    assert "new_password" in named.value.errors


def test_display_name_and_bio() -> None:
    assert clean_display_name("  Zoë  ") == "Zoë"
    assert clean_display_name("   ") is None
    assert clean_display_name(None) is None
    for bad in ("x" * 33, "bell\x07"):
        with pytest.raises(InvalidInput):
            clean_display_name(bad)
    assert clean_bio("  hi  ") == "hi"
    with pytest.raises(InvalidInput):
        clean_bio("x" * 501)
