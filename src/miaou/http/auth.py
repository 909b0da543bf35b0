"""Who is calling: bearer-token authentication as a Litestar dependency.

Handlers that need a user declare a ``who: Principal`` parameter. Resolving it also applies
the caller's per-user rate limit for the route's group, so every authenticated route is
limited per user as well as per IP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Request
from litestar.di import Provide

from miaou.accounts.service import Principal
from miaou.errors import Unauthorized

if TYPE_CHECKING:
    from miaou.app import Node


def node_of(request: Request[Any, Any, Any]) -> Node:
    node: Node = request.app.state.node
    return node


def bearer_token(request: Request[Any, Any, Any]) -> str:
    return bearer_token_of(request.headers.get("authorization", ""))


def bearer_token_of(authorization: str) -> str:
    """The token of an ``Authorization`` header's value, or :class:`Unauthorized`."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send 'Authorization: Bearer <token>'.", code="missing_token")
    return token.strip()


async def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    node = node_of(request)
    who = await node.accounts.authenticate(bearer_token(request))
    await node.rate_limits.check_user(request.scope, who.user_id)  # type: ignore[arg-type]
    return who


async def optional_user(request: Request[Any, Any, Any]) -> int | None:
    """The caller's user id when a bearer token is sent (a bad one is still 401), or None
    for an anonymous caller: routes that public content answers for anyone use this."""
    if "authorization" not in request.headers:
        return None
    who = await provide_principal(request)
    return who.user_id


def client_ip(request: Request[Any, Any, Any]) -> str:
    return str(request.scope["state"].get("client_ip", ""))


def user_agent(request: Request[Any, Any, Any]) -> str:
    return request.headers.get("user-agent", "")


principal = Provide(provide_principal)
