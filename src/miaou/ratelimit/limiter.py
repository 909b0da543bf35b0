"""Named rate-limit policies over a store, and the HTTP headers that report them.

A *group* names a class of actions ("login", "messages.create", ...). Its :class:`Policy`
may limit per client IP, per user, or both; each is a separate bucket keyed
``"{group}:ip:{ip}"`` / ``"{group}:user:{user_id}"``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Mapping
from typing import Literal

import msgspec

from .gcra import Decision, Limit
from .store import MemoryStore, RateLimitStore

__all__ = ["Policy", "RateLimiter", "Scope", "Verdict", "headers"]

Scope = Literal["user", "ip"]


class Policy(msgspec.Struct, frozen=True):
    """Limits for one group; None means "not limited on that axis"."""

    per_ip: Limit | None = None
    per_user: Limit | None = None


class Verdict(msgspec.Struct, frozen=True):
    """The deciding bucket of a :meth:`RateLimiter.check`: its decision and what produced it.

    ``limit`` is needed to report the decision (``X-RateLimit-Limit``), ``scope`` and ``key``
    say which bucket it was (for logs and an ``X-RateLimit-Scope``-style hint).
    """

    decision: Decision
    limit: Limit
    scope: Scope
    key: str

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def retry_after(self) -> float:
        return self.decision.retry_after

    def headers(self) -> dict[str, str]:
        return headers(self.decision, self.limit)


class RateLimiter:
    """Checks requests against per-group policies.

    ``clock`` returns seconds; it must be Unix time (the default) if the ``X-RateLimit-Reset``
    header is to mean anything, and the same clock on every node sharing a Redis store.
    """

    def __init__(
        self,
        store: RateLimitStore,
        policies: Mapping[str, Policy],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._policies = dict(policies)
        self._clock = clock

    async def check(
        self,
        group: str,
        *,
        ip: str | None = None,
        user_id: int | str | None = None,
        cost: int = 1,
    ) -> Verdict | None:
        """Count one request of ``group`` against each applicable bucket.

        Returns None when nothing applies: unknown group, or no limit for the identities
        given (e.g. a per-user-only policy and an anonymous request). Otherwise the most
        restrictive verdict: the refused one if any, else the one with least remaining
        (ties: the one that takes longer to reset).

        The user bucket is checked first and a refusal stops there, so a user over their own
        limit does not also drain the budget of an IP they may share (NAT) with others. A
        bucket already charged before a later refusal is not refunded: a refund would be a
        second racy write, and the over-charge only falls on a client being refused anyway.
        Store errors (:class:`~miaou.errors.Unavailable`) propagate.
        """
        judging = self._judge(group, ip, user_id)
        try:
            key, limit, now = next(judging)
            while True:
                decision = await self._store.hit(key, limit, now, cost)
                key, limit, now = judging.send(decision)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    @property
    def in_memory(self) -> bool:
        """Whether :meth:`check_now` can answer (the buckets are in this process)."""
        return isinstance(self._store, MemoryStore)

    def check_now(
        self, group: str, *, ip: str | None = None, user_id: int | str | None = None
    ) -> Verdict | None:
        """:meth:`check` without awaiting, for callers that cannot (the segment fast path
        answers inside uvicorn's protocol callbacks); only when :attr:`in_memory`."""
        store = self._store
        if not isinstance(store, MemoryStore):
            raise RuntimeError("check_now needs the buckets in memory")
        judging = self._judge(group, ip, user_id)
        try:
            key, limit, now = next(judging)
            while True:
                key, limit, now = judging.send(store.hit_now(key, limit, now))
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _judge(
        self, group: str, ip: str | None, user_id: int | str | None
    ) -> Generator[tuple[str, Limit, float], Decision, Verdict | None]:
        """The rules of :meth:`check` without the store: yields each bucket to charge
        (key, limit, and the instant, one for all of a request's buckets), is sent its
        decision, returns the verdict."""
        policy = self._policies.get(group)
        if policy is None:
            return None
        buckets: list[tuple[Scope, str, Limit]] = []
        if policy.per_user is not None and user_id is not None:
            buckets.append(("user", f"{group}:user:{user_id}", policy.per_user))
        if policy.per_ip is not None and ip is not None:
            buckets.append(("ip", f"{group}:ip:{ip}", policy.per_ip))
        if not buckets:
            return None
        now = self._clock()
        verdicts: list[Verdict] = []
        for scope, key, limit in buckets:
            decision = yield key, limit, now
            verdict = Verdict(decision=decision, limit=limit, scope=scope, key=key)
            if not decision.allowed:
                return verdict
            verdicts.append(verdict)
        return min(verdicts, key=lambda v: (v.decision.remaining, -v.decision.reset_after))


def headers(decision: Decision, limit: Limit) -> dict[str, str]:
    """Rate-limit response headers for a decision made with ``limit``.

    * ``X-RateLimit-Limit``: the burst size (``limit.count``);
    * ``X-RateLimit-Remaining``: requests still allowed right now;
    * ``X-RateLimit-Reset``: Unix time (s, 3 decimals) at which the bucket is full again;
      this is the decision's TAT, so it assumes the limiter's clock is Unix time;
    * ``X-RateLimit-Reset-After``: seconds until then (3 decimals, like Discord's);
    * ``Retry-After``: only when refused; whole seconds, rounded up, at least 1.

    Times are rounded *up* to the millisecond: a client that waits what we say must not
    arrive early.
    """
    out = {
        "X-RateLimit-Limit": str(limit.count),
        "X-RateLimit-Remaining": str(decision.remaining),
        "X-RateLimit-Reset": f"{_ceil_ms(decision.tat):.3f}",
        "X-RateLimit-Reset-After": f"{_ceil_ms(decision.reset_after):.3f}",
    }
    if not decision.allowed:
        out["Retry-After"] = str(max(1, math.ceil(decision.retry_after)))
    return out


def _ceil_ms(seconds: float) -> float:
    return math.ceil(seconds * 1000) / 1000
