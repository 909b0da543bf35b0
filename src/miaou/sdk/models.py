"""Typed shapes of the node's answers (ids are strings, as on the wire)."""

from __future__ import annotations

import msgspec


class User(msgspec.Struct, kw_only=True):
    id: str
    username: str
    display_name: str | None
    bio: str
    created_at: int


class Me(User, kw_only=True):
    is_admin: bool


class AuthResult(msgspec.Struct, kw_only=True):
    token: str
    session_id: str
    user: Me


class Session(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    last_used_at: int
    user_agent: str
    ip: str
    current: bool


class Invite(msgspec.Struct, kw_only=True):
    code: str
    max_uses: int | None
    uses: int
    expires_at: int | None
    created_at: int
    created_by: str | None
