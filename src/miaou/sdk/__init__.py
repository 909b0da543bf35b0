"""The Python client of a Miaou node: REST (:class:`Client`) and gateway (:class:`GatewayClient`).

It depends on nothing server-side: bots and tools install it against any node::

    async with Client("http://127.0.0.1:8080") as client:
        await client.login("alice", "correct horse battery")
        me = await client.me()
        async with await client.gateway() as gw:  # IDENTIFY, READY, then auto-resume
            event = await gw.wait_for("MESSAGE_CREATE")
"""

from miaou.sdk.client import Client
from miaou.sdk.errors import (
    ApiError,
    GatewayAuthError,
    GatewayClosed,
    GatewayError,
    RateLimitedError,
)
from miaou.sdk.gateway import GatewayClient
from miaou.sdk.models import Attachment, AuthResult, GatewayEvent, Invite, Me, Session, User

__all__ = [
    "ApiError",
    "Attachment",
    "AuthResult",
    "Client",
    "GatewayAuthError",
    "GatewayClient",
    "GatewayClosed",
    "GatewayError",
    "GatewayEvent",
    "Invite",
    "Me",
    "RateLimitedError",
    "Session",
    "User",
]
