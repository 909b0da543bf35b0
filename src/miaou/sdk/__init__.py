"""The Python client of a Miaou node (REST now; the gateway comes with its issue).

It depends on nothing server-side: bots and tools install it against any node::

    async with Client("http://127.0.0.1:8080") as client:
        await client.login("alice", "correct horse battery")
        me = await client.me()
"""

from miaou.sdk.client import Client
from miaou.sdk.errors import ApiError, RateLimitedError
from miaou.sdk.models import Attachment, AuthResult, Invite, Me, Session, User

__all__ = [
    "ApiError",
    "Attachment",
    "AuthResult",
    "Client",
    "Invite",
    "Me",
    "RateLimitedError",
    "Session",
    "User",
]
