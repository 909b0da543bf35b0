"""Async REST client.

Rate limits: on 429 the client waits ``Retry-After`` and retries, up to
``rate_limit_retries`` times and never longer than ``max_retry_wait`` seconds per wait; then
it raises :class:`RateLimitedError`. Set ``rate_limit_retries=0`` to see every 429.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeAlias, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from miaou.sdk.chat import ChatCalls, audit_header
from miaou.sdk.errors import ApiError, GatewayAuthError, RateLimitedError
from miaou.sdk.gateway import GatewayClient, gateway_url
from miaou.sdk.models import (
    AuthResult,
    Invite,
    Me,
    Message,
    MessageVersion,
    Session,
    User,
)
from miaou.sdk.tracks import TrackCalls

T = TypeVar("T")
USER_AGENT = "miaou-sdk/0.1"
# An attachment to send: (filename, content) or (filename, content, content type), where
# content is bytes, a path (streamed from disk) or a binary file object.
FileContent: TypeAlias = bytes | str | os.PathLike[str] | IO[bytes]
FileSpec: TypeAlias = tuple[str, FileContent] | tuple[str, FileContent, str]


class Client(ChatCalls, TrackCalls):
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        rate_limit_retries: int = 3,
        max_retry_wait: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_wait = max_retry_wait
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers={"user-agent": USER_AGENT}
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object | TracebackType) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    # -- transport ----------------------------------------------------------------------
    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
        data: dict[str, str] | None = None,
        files: list[tuple[str, Any]] | None = None,
    ) -> httpx.Response:
        """Send a request; return the response if 2xx, else raise :class:`ApiError`."""
        all_headers = dict(headers or {})
        if self.token and "authorization" not in {k.lower() for k in all_headers}:
            all_headers["authorization"] = f"Bearer {self.token}"
        attempt = 0
        while True:
            response = await self._http.request(
                method, path, json=json, params=params, headers=all_headers, content=content,
                data=data, files=files,
            )  # fmt: skip
            if response.status_code != 429 or attempt >= self.rate_limit_retries:
                break
            wait = float(response.headers.get("retry-after", "1"))
            if wait > self.max_retry_wait:
                break
            attempt += 1
            await asyncio.sleep(wait)
        if response.is_success:
            return response
        raise _error(response)

    async def _get(self, path: str, into: type[T], **kw: Any) -> T:
        return msgspec.convert((await self.request("GET", path, **kw)).json(), into)

    # -- auth ---------------------------------------------------------------------------
    async def register(
        self,
        username: str,
        password: str,
        *,
        display_name: str | None = None,
        invite_code: str | None = None,
    ) -> AuthResult:
        body: dict[str, Any] = {"username": username, "password": password}
        if display_name is not None:
            body["display_name"] = display_name
        if invite_code is not None:
            body["invite_code"] = invite_code
        response = await self.request("POST", "/api/v1/auth/register", json=body)
        result = msgspec.convert(response.json(), AuthResult)
        self.token = result.token
        return result

    async def login(self, username: str, password: str) -> AuthResult:
        response = await self.request(
            "POST", "/api/v1/auth/login", json={"username": username, "password": password}
        )
        result = msgspec.convert(response.json(), AuthResult)
        self.token = result.token
        return result

    async def logout(self) -> None:
        await self.request("POST", "/api/v1/auth/logout")
        self.token = None

    async def sessions(self) -> list[Session]:
        data = (await self.request("GET", "/api/v1/auth/sessions")).json()
        return msgspec.convert(data["sessions"], list[Session])

    async def session(self, session_id: str) -> Session:
        return await self._get(f"/api/v1/auth/sessions/{session_id}", Session)

    async def revoke_session(self, session_id: str) -> None:
        await self.request("DELETE", f"/api/v1/auth/sessions/{session_id}")

    async def change_password(self, current_password: str, new_password: str) -> int:
        response = await self.request(
            "POST",
            "/api/v1/auth/password",
            json={"current_password": current_password, "new_password": new_password},
        )
        return int(response.json()["revoked_sessions"])

    # -- users --------------------------------------------------------------------------
    async def me(self) -> Me:
        return await self._get("/api/v1/users/@me", Me)

    async def update_me(self, **changes: Any) -> Me:
        response = await self.request("PATCH", "/api/v1/users/@me", json=changes)
        return msgspec.convert(response.json(), Me)

    async def user(self, user_id: str) -> User:
        return await self._get(f"/api/v1/users/{user_id}", User)

    async def user_named(self, username: str) -> User:
        """The user of this exact username (case-insensitive)."""
        response = await self.request("GET", "/api/v1/users", params={"username": username})
        return msgspec.convert(response.json(), User)

    # -- administration -----------------------------------------------------------------
    async def create_invite(
        self, *, max_uses: int | None = None, expires_in: int | None = None
    ) -> Invite:
        response = await self.request(
            "POST", "/api/v1/admin/invites", json={"max_uses": max_uses, "expires_in": expires_in}
        )
        return msgspec.convert(response.json(), Invite)

    async def invites(self, *, before: int | None = None, limit: int = 100) -> list[Invite]:
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        data = (await self.request("GET", "/api/v1/admin/invites", params=params)).json()
        return msgspec.convert(data["invites"], list[Invite])

    async def revoke_invite(self, code: str) -> None:
        await self.request("DELETE", f"/api/v1/admin/invites/{code}")

    # -- operations ---------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        return dict((await self.request("GET", "/healthz")).json())

    async def node_info(self) -> dict[str, Any]:
        """The node's version, registration mode (open, invite, closed) and limits."""
        return dict((await self.request("GET", "/api/v1/node")).json())

    # -- gateway ------------------------------------------------------------------------
    async def gateway(self, **kw: Any) -> GatewayClient:
        """A gateway client for this node and token (``GET /api/v1/gateway`` names the URL),
        not yet connected: ``async with await client.gateway() as gw: ...``. ``kw`` goes to
        :class:`GatewayClient` (``reconnect``, ``queue_size``, ``presence``, ...)."""
        if not self.token:
            raise GatewayAuthError("the gateway needs a token: log in first")
        data = (await self.request("GET", "/api/v1/gateway")).json()
        return GatewayClient(gateway_url(self.base_url, str(data["url"])), self.token, **kw)

    # -- messages -----------------------------------------------------------------------
    async def send_message(
        self,
        channel_id: str,
        content: str = "",
        *,
        nonce: str | int | None = None,
        reply_to: str | None = None,
        allowed_mentions: dict[str, Any] | None = None,
        files: Sequence[FileSpec] | None = None,
    ) -> Message:
        """With ``files`` (at most 10), the message is sent as multipart/form-data, and
        ``content`` may be empty."""
        body: dict[str, Any] = {"content": content}
        if nonce is not None:
            body["nonce"] = nonce
        if reply_to is not None:
            body["message_reference"] = {"message_id": reply_to}
        if allowed_mentions is not None:
            body["allowed_mentions"] = allowed_mentions
        path = f"/api/v1/channels/{channel_id}/messages"
        if not files:
            response = await self.request("POST", path, json=body)
            return msgspec.convert(response.json(), Message)
        with contextlib.ExitStack() as opened:
            parts = [(f"files[{i}]", _file_part(spec, opened)) for i, spec in enumerate(files)]
            payload = msgspec.json.encode(body).decode()
            response = await self.request("POST", path, data={"payload_json": payload}, files=parts)
        return msgspec.convert(response.json(), Message)

    async def download_attachment(self, url: str) -> bytes:
        """The bytes of an attachment (or thumbnail) from its ``url`` / ``proxy_url``."""
        return (await self.request("GET", url)).content

    async def messages(
        self,
        channel_id: str,
        *,
        before: str | None = None,
        after: str | None = None,
        around: str | None = None,
        limit: int | None = None,
    ) -> list[Message]:
        """History, newest first; at most one of ``before``, ``after``, ``around``."""
        params = {
            k: v
            for k, v in {"before": before, "after": after, "around": around, "limit": limit}.items()
            if v is not None
        }
        return await self._get(
            f"/api/v1/channels/{channel_id}/messages", list[Message], params=params
        )

    async def message(self, channel_id: str, message_id: str) -> Message:
        return await self._get(f"/api/v1/channels/{channel_id}/messages/{message_id}", Message)

    async def edit_message(self, channel_id: str, message_id: str, content: str) -> Message:
        response = await self.request(
            "PATCH",
            f"/api/v1/channels/{channel_id}/messages/{message_id}",
            json={"content": content},
        )
        return msgspec.convert(response.json(), Message)

    async def delete_message(
        self, channel_id: str, message_id: str, *, reason: str | None = None
    ) -> None:
        await self.request(
            "DELETE",
            f"/api/v1/channels/{channel_id}/messages/{message_id}",
            headers=audit_header(reason),
        )

    async def message_versions(self, channel_id: str, message_id: str) -> list[MessageVersion]:
        return await self._get(
            f"/api/v1/channels/{channel_id}/messages/{message_id}/versions", list[MessageVersion]
        )

    async def pins(self, channel_id: str) -> list[Message]:
        return await self._get(f"/api/v1/channels/{channel_id}/pins", list[Message])

    async def pin_message(self, channel_id: str, message_id: str) -> None:
        await self.request("PUT", f"/api/v1/channels/{channel_id}/pins/{message_id}")

    async def unpin_message(self, channel_id: str, message_id: str) -> None:
        await self.request("DELETE", f"/api/v1/channels/{channel_id}/pins/{message_id}")

    def _reaction_path(self, channel_id: str, message_id: str, emoji: str) -> str:
        # Unicode emoji are percent-encoded; "name:id" keeps its colon, as Discord expects.
        encoded = quote(emoji, safe=":")
        return f"/api/v1/channels/{channel_id}/messages/{message_id}/reactions/{encoded}"

    async def add_reaction(self, channel_id: str, message_id: str, emoji: str) -> None:
        await self.request("PUT", self._reaction_path(channel_id, message_id, emoji) + "/@me")

    async def remove_reaction(
        self, channel_id: str, message_id: str, emoji: str, user_id: str = "@me"
    ) -> None:
        """My reaction, or (with MANAGE_MESSAGES) ``user_id``'s."""
        path = self._reaction_path(channel_id, message_id, emoji)
        await self.request("DELETE", f"{path}/{user_id}")

    async def reactions(
        self,
        channel_id: str,
        message_id: str,
        emoji: str,
        *,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[User]:
        """Who reacted with ``emoji``, by user id; page on with ``after`` = the last id."""
        params = {k: v for k, v in {"after": after, "limit": limit}.items() if v is not None}
        return await self._get(
            self._reaction_path(channel_id, message_id, emoji), list[User], params=params
        )


def _file_part(spec: FileSpec, opened: contextlib.ExitStack) -> tuple[str, Any, str]:
    filename, content = spec[0], spec[1]
    content_type = spec[2] if len(spec) == 3 else "application/octet-stream"
    if isinstance(content, (str, os.PathLike)):
        # Streamed from disk by httpx rather than read whole.
        content = opened.enter_context(Path(content).open("rb"))  # noqa: SIM115 - the stack closes it
    return (filename, content, content_type)


def _error(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        code, message = str(body["code"]), str(body["message"])
        errors = body.get("errors") or {}
    except (ValueError, KeyError, TypeError):
        code, message, errors = "http_error", response.text[:200], {}
    cls = RateLimitedError if response.status_code == 429 else ApiError
    return cls(response.status_code, code, message, errors, dict(response.headers))
