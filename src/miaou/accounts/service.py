"""Account use cases: register, log in and out, sessions, profile, password change.

Each method authorises, validates, and writes in one transaction; it returns after commit.
Bearer tokens are authenticated through :mod:`miaou.accounts.token_cache`: every method that
deletes sessions or disables a user invalidates that cache right after its commit (in a
``finally``, so a commit cut short by cancellation still invalidates).
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from miaou import ids
from miaou.accounts import store
from miaou.accounts.models import (
    AuthResult,
    LoginRequest,
    Me,
    PasswordChangeRequest,
    ProfilePatch,
    RegisterRequest,
    Session,
    User,
    clean_bio,
    clean_display_name,
    username_key,
    validate_password,
    validate_username,
)
from miaou.accounts.passwords import Passwords
from miaou.accounts.token_cache import TokenCache
from miaou.accounts.tokens import looks_like_token, new_token, token_hash
from miaou.config import Settings
from miaou.db.engine import Database
from miaou.db.metadata import users
from miaou.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from miaou.ids import now_ms

# A session's last-used time is written at most this often, not on every request.
TOUCH_EVERY_MS = 60_000
# Built once, so SQLAlchemy reuses its compiled form: READY reads it on every connection.
_USER = select(users).where(users.c.id == bindparam("user_id"))


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the authenticated user and the session their token belongs to."""

    user_id: int
    session_id: int
    is_admin: bool


def user_view(row: Row[Any]) -> User:
    return User(
        id=str(row.id),
        username=row.username,
        display_name=row.display_name,
        bio=row.bio,
        created_at=row.created_at,
    )


def me_view(row: Row[Any]) -> Me:
    return Me(**msgspec.structs.asdict(user_view(row)), is_admin=bool(row.is_admin))


class AccountService:
    def __init__(self, db: Database, passwords: Passwords, settings: Settings) -> None:
        self.db = db
        self.passwords = passwords
        self.settings = settings
        self.token_cache = TokenCache(settings.auth_cache_seconds)

    # -- registration -------------------------------------------------------------------
    async def register(
        self, body: RegisterRequest, *, user_agent: str = "", ip: str = ""
    ) -> AuthResult:
        """Self-service registration, as the ``registration`` setting allows."""
        mode = self.settings.registration
        if mode == "closed":
            raise Forbidden("Registration is closed on this node.", code="registration_closed")
        if mode == "invite" and not body.invite_code:
            raise Forbidden(
                "Registration needs an invite code on this node.",
                code="invite_required",
                errors={"invite_code": ["is required"]},
            )
        values = await self._new_user_values(body.username, body.password, body.display_name)
        async with self.db.write() as conn:
            if mode == "invite" and not await store.consume_invite(
                conn, body.invite_code or "", values["created_at"]
            ):
                raise Forbidden(
                    "This invite code is invalid, expired or used up.",
                    code="invalid_invite",
                    errors={"invite_code": ["is not valid"]},
                )
            await store.insert_user(conn, **values)
            token, session_id, _ = await self._open_session(
                conn, values["id"], values["created_at"], user_agent, ip
            )
            row = await store.user_by_id(conn, values["id"])
        assert row is not None
        return AuthResult(token=token, session_id=str(session_id), user=me_view(row))

    async def create_user(
        self,
        username: str,
        password: str,
        *,
        display_name: str | None = None,
        is_admin: bool = False,
    ) -> Me:
        """An operator creates an account (CLI): whatever the registration mode, no session."""
        values = await self._new_user_values(username, password, display_name)
        async with self.db.write() as conn:
            await store.insert_user(conn, is_admin=is_admin, **values)
            row = await store.user_by_id(conn, values["id"])
        assert row is not None
        return me_view(row)

    async def _new_user_values(
        self, username: str, password: str, display_name: str | None
    ) -> dict[str, Any]:
        name, key = validate_username(username)
        validate_password(password, username=name)
        clean_name = clean_display_name(display_name)
        now = now_ms()
        return {
            "id": ids.new_id(),
            "username": name,
            "username_key": key,
            "display_name": clean_name,
            "bio": "",
            "password_hash": await self.passwords.hash(password),
            "created_at": now,
            "updated_at": now,
        }

    # -- sessions -----------------------------------------------------------------------
    async def login(self, body: LoginRequest, *, user_agent: str = "", ip: str = "") -> AuthResult:
        key = username_key(body.username.strip())
        async with self.db.read() as conn:
            row = await store.user_by_key(conn, key)
        # The same answer and about the same time whether or not the user exists.
        if not await self.passwords.verify(row.password_hash if row else None, body.password):
            raise Unauthorized("Wrong username or password.", code="invalid_credentials")
        assert row is not None
        if row.disabled_at is not None:
            raise Forbidden("This account is disabled.", code="account_disabled")
        new_hash = None
        if self.passwords.needs_rehash(row.password_hash):
            new_hash = await self.passwords.hash(body.password)
        now = now_ms()
        pruned, session_id = 0, None
        try:
            async with self.db.write() as conn:
                if new_hash:
                    await store.update_user(conn, row.id, password_hash=new_hash)
                token, session_id, pruned = await self._open_session(
                    conn, row.id, now, user_agent, ip
                )
        finally:
            if pruned:  # sessions over the cap, or idle, are gone
                self.token_cache.invalidate_user(row.id, keep_session=session_id)
        return AuthResult(token=token, session_id=str(session_id), user=me_view(row))

    async def _open_session(
        self, conn: Any, user_id: int, now: int, user_agent: str, ip: str
    ) -> tuple[str, int, int]:
        """A new session for the user; returns its token, its id and how many old sessions
        were pruned (the caller invalidates cached tokens after commit)."""
        token = new_token()
        session_id = ids.new_id()
        await store.insert_session(
            conn,
            id=session_id,
            user_id=user_id,
            token_hash=token_hash(token),
            created_at=now,
            last_used_at=now,
            user_agent=user_agent[:256],
            ip=ip[:64],
        )
        pruned = await store.prune_sessions(
            conn,
            user_id,
            keep_newest=self.settings.max_sessions_per_user,
            idle_before=now - self.settings.session_idle_days * 86_400_000,
        )
        return token, session_id, pruned

    async def authenticate(self, token: str) -> Principal:
        """The principal behind a bearer token, or :class:`Unauthorized`.

        A token authenticated in the last ``auth_cache_seconds`` is answered from the token
        cache without reading the database; the checks below apply either way.
        """
        if not looks_like_token(token):
            raise Unauthorized("Invalid token.", code="invalid_token")
        key = token_hash(token)
        now = now_ms()
        auth = self.token_cache.get(key)
        if auth is None:
            generation = self.token_cache.generation  # before the read: see token_cache
            async with self.db.read() as conn:
                row = await store.session_with_user(conn, key)
            if row is None:  # unknown tokens are never cached
                raise Unauthorized("Invalid or expired token.", code="invalid_token")
            auth = self.token_cache.put(
                key,
                user_id=row.id,
                session_id=row.session_id,
                is_admin=bool(row.is_admin),
                disabled=row.disabled_at is not None,
                last_used_at=row.last_used_at,
                generation=generation,
            )
        if now - auth.last_used_at > self.settings.session_idle_days * 86_400_000:
            raise Unauthorized("Invalid or expired token.", code="invalid_token")
        if auth.disabled:
            raise Forbidden("This account is disabled.", code="account_disabled")
        if now - auth.last_used_at > TOUCH_EVERY_MS:
            # Set before the write, so requests racing this one do not write it too.
            auth.last_used_at = now
            async with self.db.write() as conn:
                await store.touch_session(conn, auth.session_id, now)
        return Principal(user_id=auth.user_id, session_id=auth.session_id, is_admin=auth.is_admin)

    async def logout(self, who: Principal) -> None:
        try:
            async with self.db.write() as conn:
                await store.delete_session(conn, who.user_id, who.session_id)
        finally:
            self.token_cache.invalidate_session(who.user_id, who.session_id)

    async def sessions(self, who: Principal) -> list[Session]:
        async with self.db.read() as conn:
            rows = await store.list_sessions(conn, who.user_id)
        return [self._session_view(r, who) for r in rows]

    async def session(self, who: Principal, session_id: int) -> Session:
        async with self.db.read() as conn:
            row = await store.get_session(conn, who.user_id, session_id)
        if row is None:
            raise NotFound("No such session.", code="unknown_session")
        return self._session_view(row, who)

    async def revoke_session(self, who: Principal, session_id: int) -> None:
        try:
            async with self.db.write() as conn:
                if not await store.delete_session(conn, who.user_id, session_id):
                    raise NotFound("No such session.", code="unknown_session")
        finally:
            self.token_cache.invalidate_session(who.user_id, session_id)

    @staticmethod
    def _session_view(row: Row[Any], who: Principal) -> Session:
        return Session(
            id=str(row.id),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            user_agent=row.user_agent,
            ip=row.ip,
            current=row.id == who.session_id,
        )

    async def change_password(self, who: Principal, body: PasswordChangeRequest) -> int:
        """Set a new password and revoke every other session; returns how many."""
        async with self.db.read() as conn:
            row = await store.user_by_id(conn, who.user_id)
        if row is None:
            raise Unauthorized("Invalid token.", code="invalid_token")
        if not await self.passwords.verify(row.password_hash, body.current_password):
            raise InvalidInput(
                "The current password is wrong.",
                code="invalid_credentials",
                errors={"current_password": ["is wrong"]},
            )
        validate_password(body.new_password, username=row.username, field="new_password")
        new_hash = await self.passwords.hash(body.new_password)
        try:
            async with self.db.write() as conn:
                await store.update_user(
                    conn, who.user_id, password_hash=new_hash, updated_at=now_ms()
                )
                return await store.delete_other_sessions(conn, who.user_id, keep=who.session_id)
        finally:
            self.token_cache.invalidate_user(who.user_id, keep_session=who.session_id)

    # -- profiles -----------------------------------------------------------------------
    async def me(self, who: Principal) -> Me:
        async with self.db.read() as conn:
            return me_view(await self.user_row(conn, who))

    async def user_row(self, conn: AsyncConnection, who: Principal) -> Row[Any]:
        """The caller's row, in the caller's transaction (READY reads it with the rest)."""
        row = (await conn.execute(_USER, {"user_id": who.user_id})).first()
        if row is None:  # deleted since the token was checked
            raise Unauthorized("Invalid token.", code="invalid_token")
        return row

    async def update_me(self, who: Principal, patch: ProfilePatch) -> Me:
        values: dict[str, Any] = {}
        if patch.display_name is not msgspec.UNSET:
            values["display_name"] = clean_display_name(patch.display_name)
        if patch.bio is not msgspec.UNSET:
            values["bio"] = clean_bio(patch.bio)
        async with self.db.write() as conn:
            if values:
                await store.update_user(conn, who.user_id, updated_at=now_ms(), **values)
            row = await store.user_by_id(conn, who.user_id)
        if row is None:
            raise Unauthorized("Invalid token.", code="invalid_token")
        return me_view(row)

    async def user(self, user_id: int) -> User:
        async with self.db.read() as conn:
            row = await store.user_by_id(conn, user_id)
        if row is None:
            raise NotFound("No such user.", code="unknown_user")
        return user_view(row)

    async def user_named(self, username: str) -> User:
        """The user of this exact username (compared as at login: case and compatibility
        forms folded); disabled accounts are not found. 404 ``unknown_user``."""
        async with self.db.read() as conn:
            row = await store.user_by_key(conn, username_key(username.strip()))
        if row is None or row.disabled_at is not None:
            raise NotFound("No such user.", code="unknown_user")
        return user_view(row)

    # -- administration (CLI) -----------------------------------------------------------
    async def list_users(self, *, after: int = 0, limit: int = 100) -> list[Row[Any]]:
        async with self.db.read() as conn:
            return list(await store.list_users(conn, after=after, limit=max(1, min(limit, 1000))))

    async def set_disabled(self, username: str, disabled: bool) -> Row[Any]:
        key = username_key(username.strip())
        user_id = None
        try:
            async with self.db.write() as conn:
                row = await store.user_by_key(conn, key)
                if row is None:
                    raise NotFound(f"No user named {username!r}.", code="unknown_user")
                user_id = row.id
                await store.update_user(
                    conn, row.id, disabled_at=now_ms() if disabled else None, updated_at=now_ms()
                )
                if disabled:  # a disabled account keeps no live session
                    await store.delete_other_sessions(conn, row.id, keep=None)
        finally:
            if user_id is not None:
                self.token_cache.invalidate_user(user_id)
        return row
