"""Accounts: wire shapes and the pure rules for usernames, passwords and profiles."""

from __future__ import annotations

import re
import unicodedata

import msgspec

from miaou.errors import InvalidInput

USERNAME_MIN, USERNAME_MAX = 2, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
DISPLAY_NAME_MAX = 32
BIO_MAX = 500

# Names that would impersonate the system or clash with mentions and routes. Compared on the
# normalised key, so "ADMIN" and its full-width spelling are refused too.
RESERVED_USERNAMES = frozenset(
    {
        "admin",
        "administrator",
        "root",
        "system",
        "miaou",
        "staff",
        "support",
        "moderator",
        "mod",
        "everyone",
        "here",
        "me",
        "@me",
        "api",
        "null",
        "undefined",
        "none",
        "deleted-user",
        "deleted_user",
        "bot",
        "webhook",
        "official",
        "security",
        "abuse",
        "postmaster",
        "webmaster",
        "hostmaster",
        "noreply",
        "no-reply",
    }
)
# Letters and digits of any script, plus _ . - ; no leading/trailing or doubled dots.
_USERNAME_CHARS = re.compile(r"^[\w.-]+$")


class Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Request bodies: unknown fields are refused, never silently ignored."""


class RegisterRequest(Strict):
    username: str
    password: str
    display_name: str | None = None
    invite_code: str | None = None


class LoginRequest(Strict):
    username: str
    password: str


class PasswordChangeRequest(Strict):
    current_password: str
    new_password: str


class ProfilePatch(Strict):
    display_name: str | msgspec.UnsetType | None = msgspec.UNSET
    bio: str | msgspec.UnsetType = msgspec.UNSET


class User(msgspec.Struct, kw_only=True):
    id: str
    username: str
    display_name: str | None
    bio: str
    created_at: int


class Me(User, kw_only=True):
    is_admin: bool


class Session(msgspec.Struct, kw_only=True):
    id: str
    created_at: int
    last_used_at: int
    user_agent: str
    ip: str
    current: bool


class AuthResult(msgspec.Struct, kw_only=True):
    token: str
    session_id: str
    user: Me


class SessionList(msgspec.Struct, kw_only=True):
    sessions: list[Session]


class PasswordChanged(msgspec.Struct, kw_only=True):
    revoked_sessions: int


MAX_INVITE_SECONDS = 366 * 86_400


class InviteCreate(Strict):
    """A registration invite: ``max_uses`` seats (None: unlimited), ``expires_in`` seconds
    (None: never)."""

    max_uses: int | None = None
    expires_in: int | None = None


class Invite(msgspec.Struct, kw_only=True):
    code: str
    max_uses: int | None
    uses: int
    expires_at: int | None
    created_at: int
    created_by: str | None


class InviteList(msgspec.Struct, kw_only=True):
    invites: list[Invite]


def username_key(username: str) -> str:
    """The case-insensitive identity of a name: NFKC, then casefold, then NFKC again."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", username).casefold())


def validate_username(raw: str) -> tuple[str, str]:
    """Return (display form, key) of a valid username or raise :class:`InvalidInput`."""
    name = unicodedata.normalize("NFKC", raw).strip()
    problems: list[str] = []
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        problems.append(f"must be {USERNAME_MIN} to {USERNAME_MAX} characters long")
    if not _USERNAME_CHARS.match(name):
        problems.append("may contain only letters, digits, '_', '.' and '-'")
    if name.startswith(".") or name.endswith(".") or ".." in name:
        problems.append("may not start or end with '.' or contain '..'")
    key = username_key(name)
    if key in RESERVED_USERNAMES:
        problems.append("is reserved")
    if problems:
        raise InvalidInput(
            "Invalid username.", code="invalid_username", errors={"username": problems}
        )
    return name, key


def validate_password(
    password: str, *, username: str | None = None, field: str = "password"
) -> None:
    problems: list[str] = []
    if len(password) < PASSWORD_MIN:
        problems.append(f"must be at least {PASSWORD_MIN} characters long")
    if len(password) > PASSWORD_MAX:
        problems.append(f"must be at most {PASSWORD_MAX} characters long")
    if password.strip() == "":
        problems.append("may not be only spaces")
    if username is not None and username_key(password) == username_key(username):
        problems.append("may not be the username")
    if problems:
        raise InvalidInput("Password too weak.", code="weak_password", errors={field: problems})


def clean_display_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = unicodedata.normalize("NFKC", raw).strip()
    if not name:
        return None
    if len(name) > DISPLAY_NAME_MAX or any(unicodedata.category(c) == "Cc" for c in name):
        raise InvalidInput(
            "Invalid display name.",
            errors={
                "display_name": [f"at most {DISPLAY_NAME_MAX} characters, no control characters"]
            },
        )
    return name


def clean_bio(raw: str) -> str:
    bio = raw.strip()
    if len(bio) > BIO_MAX:
        raise InvalidInput("Bio too long.", errors={"bio": [f"at most {BIO_MAX} characters"]})
    return bio
