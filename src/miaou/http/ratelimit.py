"""HTTP rate limiting: route groups, per-IP buckets before the handler, per-user after auth.

A route names its group in ``opt={"rate_limit": "auth"}``; the default group is ``api``;
``None`` exempts operational routes (health, metrics). The per-IP check runs in a Litestar
middleware (after routing, so the handler's group is known, before the body is read). The
per-user check runs when the bearer token is resolved (``miaou.http.auth``). The response
carries the ``X-RateLimit-*`` headers of the most restrictive bucket that was checked.

Buckets live in memory on one node, or in Redis when ``redis_url`` is set, so that every
node of a cluster counts the same requests.
"""

from __future__ import annotations

from typing import Any

from miaou.config import Settings
from miaou.errors import RateLimited
from miaou.http.errors import send_error
from miaou.ratelimit import Limit, MemoryStore, Policy, RateLimiter, RedisStore, Verdict
from miaou.ratelimit.store import RateLimitStore
from miaou.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_GROUP = "api"
_STATE_KEY = "ratelimit"


class RateLimits:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.ratelimit.enabled
        store: RateLimitStore
        if settings.redis_url:
            store = RedisStore.from_url(
                settings.redis_url, prefix=f"{settings.redis_namespace}:rl:"
            )
        else:
            store = MemoryStore()
        self._store = store

        def limit(name: str) -> Limit:
            count, period = settings.ratelimit.parsed(name)
            return Limit(count=count, period=period)

        self.limiter = RateLimiter(
            store,
            {
                "auth": Policy(per_ip=limit("auth_per_ip")),
                "api": Policy(per_ip=limit("api_per_ip"), per_user=limit("api_per_user")),
            },
        )

    async def close(self) -> None:
        await self._store.close()

    async def check_ip(self, scope: Scope, group: str) -> None:
        await self._check(scope, group, ip=client_ip(scope, self.settings.trust_proxy))

    async def check_user(self, scope: Scope, user_id: int, group: str | None = None) -> None:
        """The per-user check; ``group`` defaults to the matched route's."""
        group = group or _group_of(scope)
        if group is not None:
            await self._check(scope, group, user_id=user_id)

    async def _check(self, scope: Scope, group: str, **who: Any) -> None:
        if not self.enabled:
            return
        verdict = await self.limiter.check(group, **who)
        if verdict is None:
            return
        state = scope.setdefault("state", {})
        shown: Verdict | None = state.get(_STATE_KEY)
        if (
            shown is None
            or not verdict.allowed
            or (shown.allowed and verdict.decision.remaining < shown.decision.remaining)
        ):
            state[_STATE_KEY] = verdict
        if not verdict.allowed:
            raise RateLimited(verdict.retry_after)


def client_ip(scope: Scope, trust_proxy: bool) -> str:
    if trust_proxy:
        for name, value in scope.get("headers", []):
            if name == b"x-forwarded-for":
                first: str = value.decode("latin-1").split(",")[0]
                return first.strip()[:64]
    client = scope.get("client")
    return str(client[0]) if client else ""


def _group_of(scope: Scope) -> str | None:
    handler = scope.get("route_handler")
    opt = getattr(handler, "opt", None) or {}
    group = opt.get("rate_limit", DEFAULT_GROUP)
    return group if isinstance(group, str) else None


def rate_limit_middleware(app: ASGIApp) -> ASGIApp:
    """Litestar middleware factory: per-IP check and the ``X-RateLimit-*`` headers."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        limits: RateLimits = scope["app"].state.node.rate_limits
        send_limited = await guard(limits, scope, _group_of(scope), send)
        if send_limited is not None:
            await app(scope, receive, send_limited)

    return middleware


async def guard(limits: RateLimits, scope: Scope, group: str | None, send: Send) -> Send | None:
    """A request's per-IP check for its route ``group`` (None: exempt). Returns the ``send``
    that adds the ``X-RateLimit-*`` headers of the buckets checked for this request (this
    one and the per-user one, later), or None when it answered 429 itself."""
    state = scope.setdefault("state", {})
    state["client_ip"] = client_ip(scope, limits.settings.trust_proxy)

    async def send_with_headers(message: Message) -> None:
        verdict: Verdict | None = state.get(_STATE_KEY)
        if message["type"] == "http.response.start" and verdict is not None:
            extra = [
                (k.lower().encode(), v.encode())
                for k, v in verdict.headers().items()
                if k != "Retry-After" or not _has(message, b"retry-after")
            ]
            message["headers"] = [*message.get("headers", []), *extra]
        await send(message)

    if group is not None:
        try:
            await limits.check_ip(scope, group)
        except RateLimited as exc:
            # Answered here rather than raised: Litestar's exception handling sits outside
            # this middleware and would bypass the header-adding ``send``.
            await send_error(exc, send_with_headers)
            return None
    return send_with_headers


def _has(message: Message, name: bytes) -> bool:
    return any(k.lower() == name for k, _ in message.get("headers", []))
