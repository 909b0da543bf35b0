"""REST routes of the accounts wing: ``/api/v1/auth/*`` and ``/api/v1/users/*``."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from miaou.accounts.models import (
    AuthResult,
    Invite,
    InviteCreate,
    InviteList,
    LoginRequest,
    Me,
    PasswordChanged,
    PasswordChangeRequest,
    ProfilePatch,
    RegisterRequest,
    Session,
    SessionList,
    User,
)
from miaou.accounts.service import Principal
from miaou.errors import Forbidden, InvalidInput
from miaou.http.auth import client_ip, node_of, principal, user_agent
from miaou.http.params import path_id

AnyRequest = Request[Any, Any, Any]
# Password guessing and account creation get the strict per-IP bucket.
AUTH_LIMITED = {"rate_limit": "auth"}
USERNAME_QUERY_MAX = 64  # longer than any username (32), short of anything abusive


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["auth"]

    @post("/register", status_code=HTTP_201_CREATED, summary="Create an account", opt=AUTH_LIMITED)
    async def register(self, request: AnyRequest, data: JSONBody[RegisterRequest]) -> AuthResult:
        """Create an account and a first session. Usernames: 2-32 characters, letters,
        digits, `_ . -`, unique ignoring case; passwords: at least 8 characters."""
        return await node_of(request).accounts.register(
            data, user_agent=user_agent(request), ip=client_ip(request)
        )

    @post(
        "/login", status_code=HTTP_200_OK, summary="Log in and get a bearer token", opt=AUTH_LIMITED
    )
    async def login(self, request: AnyRequest, data: JSONBody[LoginRequest]) -> AuthResult:
        return await node_of(request).accounts.login(
            data, user_agent=user_agent(request), ip=client_ip(request)
        )

    @post(
        "/logout",
        status_code=HTTP_204_NO_CONTENT,
        dependencies={"who": principal},
        summary="Revoke the session of this token",
    )
    async def logout(self, request: AnyRequest, who: NamedDependency[Principal]) -> None:
        await node_of(request).accounts.logout(who)

    @get("/sessions", dependencies={"who": principal}, summary="List my sessions")
    async def sessions(self, request: AnyRequest, who: NamedDependency[Principal]) -> SessionList:
        return SessionList(sessions=await node_of(request).accounts.sessions(who))

    @get("/sessions/{session_id:str}", dependencies={"who": principal})
    async def session(
        self, request: AnyRequest, who: NamedDependency[Principal], session_id: FromPath[str]
    ) -> Session:
        return await node_of(request).accounts.session(who, path_id(session_id, "session"))

    @delete(
        "/sessions/{session_id:str}",
        dependencies={"who": principal},
        summary="Revoke one of my sessions",
    )
    async def revoke(
        self, request: AnyRequest, who: NamedDependency[Principal], session_id: FromPath[str]
    ) -> None:
        await node_of(request).accounts.revoke_session(who, path_id(session_id, "session"))

    @post(
        "/password",
        status_code=HTTP_200_OK,
        dependencies={"who": principal},
        summary="Change my password; revokes my other sessions",
    )
    async def change_password(
        self,
        request: AnyRequest,
        who: NamedDependency[Principal],
        data: JSONBody[PasswordChangeRequest],
    ) -> PasswordChanged:
        revoked = await node_of(request).accounts.change_password(who, data)
        return PasswordChanged(revoked_sessions=revoked)


class UsersController(Controller):
    path = "/api/v1/users"
    tags = ["users"]
    dependencies = {"who": principal}

    @get("/", summary="Find a user by exact username (to share with or message them)")
    async def find(
        self, request: AnyRequest, who: NamedDependency[Principal], username: FromQuery[str]
    ) -> User:
        """`username` is compared as at login (case-insensitive); 404 `unknown_user`. No
        prefix search: knowing a name is what finds someone."""
        if not 1 <= len(username) <= USERNAME_QUERY_MAX:
            raise InvalidInput(
                "Invalid username.",
                errors={"username": [f"must be 1 to {USERNAME_QUERY_MAX} characters"]},
            )
        return await node_of(request).accounts.user_named(username)

    @get("/@me", summary="My account")
    async def me(self, request: AnyRequest, who: NamedDependency[Principal]) -> Me:
        return await node_of(request).accounts.me(who)

    @patch("/@me", summary="Update my display name or bio")
    async def update_me(
        self, request: AnyRequest, who: NamedDependency[Principal], data: JSONBody[ProfilePatch]
    ) -> Me:
        return await node_of(request).accounts.update_me(who, data)

    @get("/{user_id:str}", summary="A user's public profile")
    async def user(
        self, request: AnyRequest, who: NamedDependency[Principal], user_id: FromPath[str]
    ) -> User:
        return await node_of(request).accounts.user(path_id(user_id, "user"))


def _require_admin(who: Principal) -> None:
    if not who.is_admin:
        raise Forbidden("This needs an administrator of this node.", code="admin_only")


class AdminInvitesController(Controller):
    """Registration invites, for nodes whose ``registration`` setting is ``invite``."""

    path = "/api/v1/admin/invites"
    tags = ["admin"]
    dependencies = {"who": principal}

    @post("/", status_code=HTTP_201_CREATED, summary="Create a registration invite")
    async def create(
        self, request: AnyRequest, who: NamedDependency[Principal], data: JSONBody[InviteCreate]
    ) -> Invite:
        _require_admin(who)
        return await node_of(request).invites.create(data, created_by=who.user_id)

    @get("/", summary="List registration invites, newest first")
    async def list(
        self,
        request: AnyRequest,
        who: NamedDependency[Principal],
        before: FromQuery[int | None] = None,
        limit: FromQuery[int] = 100,
    ) -> InviteList:
        _require_admin(who)
        invites = await node_of(request).invites.list(before=before, limit=limit)
        return InviteList(invites=invites)

    @delete("/{code:str}", summary="Revoke a registration invite")
    async def revoke(
        self, request: AnyRequest, who: NamedDependency[Principal], code: FromPath[str]
    ) -> None:
        _require_admin(who)
        await node_of(request).invites.revoke(code)
