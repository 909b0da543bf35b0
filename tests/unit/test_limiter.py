"""RateLimiter policies and rate-limit headers, over a MemoryStore and an injected clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from miaou.ratelimit import (
    Decision,
    Limit,
    MemoryStore,
    Policy,
    RateLimiter,
    Verdict,
    headers,
)

T0 = 1_700_000_000.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(policies: dict[str, Policy]) -> tuple[RateLimiter, Clock]:
    clock = Clock()
    return RateLimiter(MemoryStore(), policies, clock=clock), clock


async def allowed(
    limiter: RateLimiter,
    group: str,
    n: int,
    *,
    ip: str | None = None,
    user_id: int | str | None = None,
) -> list[bool]:
    out = []
    for _ in range(n):
        verdict = await limiter.check(group, ip=ip, user_id=user_id)
        assert verdict is not None
        out.append(verdict.allowed)
    return out


async def test_no_applicable_policy_means_no_verdict() -> None:
    limiter, _ = make(
        {
            "users_only": Policy(per_user=Limit(1, 60.0)),
            "ip_only": Policy(per_ip=Limit(1, 60.0)),
            "nothing": Policy(),
        }
    )
    assert await limiter.check("unknown", ip="1.2.3.4", user_id=1) is None
    assert await limiter.check("nothing", ip="1.2.3.4", user_id=1) is None
    assert await limiter.check("users_only", ip="1.2.3.4") is None  # anonymous
    assert await limiter.check("ip_only", user_id=1) is None  # no IP known
    # ... and those calls charged nothing.
    assert (await limiter.check("users_only", user_id=1)) is not None


async def test_per_ip_burst_refusal_and_refill() -> None:
    limiter, clock = make({"login": Policy(per_ip=Limit(3, 60.0))})  # T = 20 s
    assert await allowed(limiter, "login", 4, ip="1.2.3.4") == [True, True, True, False]
    refused = await limiter.check("login", ip="1.2.3.4")
    assert refused is not None
    assert (refused.scope, refused.key, refused.limit) == ("ip", "login:ip:1.2.3.4", Limit(3, 60.0))
    assert refused.retry_after == pytest.approx(20.0)
    # Other IPs, and the same IP in other groups, are separate buckets.
    assert await allowed(limiter, "login", 1, ip="5.6.7.8") == [True]
    clock.now += 20.0
    assert await allowed(limiter, "login", 2, ip="1.2.3.4") == [True, False]


async def test_user_is_checked_first_and_a_user_refusal_spares_the_ip() -> None:
    policy = Policy(per_ip=Limit(5, 60.0), per_user=Limit(3, 60.0))
    limiter, _ = make({"post": policy})
    # Alice, behind a shared IP, goes well over her own limit.
    alice = await allowed(limiter, "post", 6, ip="10.0.0.1", user_id=1)
    assert alice == [True] * 3 + [False] * 3
    verdict = await limiter.check("post", ip="10.0.0.1", user_id=1)
    assert verdict is not None
    assert (verdict.scope, verdict.key) == ("user", "post:user:1")
    # Only her three allowed requests were charged to the IP: Bob gets the other two,
    # then the IP bucket (not his own) stops him.
    assert await allowed(limiter, "post", 2, ip="10.0.0.1", user_id="bob") == [True, True]
    bob = await limiter.check("post", ip="10.0.0.1", user_id="bob")
    assert bob is not None and not bob.allowed
    assert (bob.scope, bob.key) == ("ip", "post:ip:10.0.0.1")
    # That refusal still charged Bob's own bucket, checked (and passed) before the IP's:
    # no refunds. His next request is refused by his own limit.
    bob = await limiter.check("post", ip="10.0.0.1", user_id="bob")
    assert bob is not None and (bob.allowed, bob.scope) == (False, "user")


async def test_the_most_restrictive_allowed_bucket_is_reported() -> None:
    policy = Policy(per_ip=Limit(10, 10.0), per_user=Limit(3, 60.0))
    limiter, _ = make({"g": policy})
    v = await limiter.check("g", ip="::1", user_id=7)
    assert v is not None and v.allowed
    assert (v.scope, v.decision.remaining, v.limit) == ("user", 2, Limit(3, 60.0))
    # Now make the IP the tighter one (fewer remaining) via other users on it.
    for other in range(100, 108):
        await limiter.check("g", ip="::1", user_id=other)
    v = await limiter.check("g", ip="::1", user_id=7)
    assert v is not None and v.allowed
    assert (v.scope, v.decision.remaining) == ("ip", 0)


async def test_ties_go_to_the_bucket_that_resets_later() -> None:
    # Same remaining (1) on both; the user bucket takes 60 s to refill, the IP one 2 s.
    policy = Policy(per_ip=Limit(2, 2.0), per_user=Limit(2, 60.0))
    limiter, _ = make({"g": policy})
    v = await limiter.check("g", ip="1.1.1.1", user_id=1)
    assert v is not None
    assert (v.scope, v.decision.remaining) == ("user", 1)
    policy = Policy(per_ip=Limit(2, 60.0), per_user=Limit(2, 2.0))
    limiter, _ = make({"g": policy})
    v = await limiter.check("g", ip="1.1.1.1", user_id=1)
    assert v is not None
    assert (v.scope, v.decision.remaining) == ("ip", 1)


async def test_cost_and_one_instant_per_check() -> None:
    limiter, _ = make({"upload": Policy(per_user=Limit(10, 100.0))})
    v = await limiter.check("upload", user_id=1, cost=7)
    assert v is not None and v.decision.remaining == 3
    assert v.decision.tat == T0 + 70.0  # the clock was read once, for this instant
    v = await limiter.check("upload", user_id=1, cost=4)
    assert v is not None and not v.allowed
    assert v.retry_after == pytest.approx(10.0)


# ------------------------------------------------------------------------------ headers


async def test_check_now_judges_as_check_does_and_shares_the_buckets() -> None:
    policy = Policy(per_ip=Limit(2, 60.0), per_user=Limit(3, 60.0))
    limiter, _ = make({"g": policy})
    twin, _ = make({"g": policy})
    for _ in range(4):
        checked = await limiter.check("g", ip="1.2.3.4", user_id=7)
        now = twin.check_now("g", ip="1.2.3.4", user_id=7)
        assert now == checked
    # One set of buckets: a synchronous hit counts for the asynchronous path too.
    assert limiter.check_now("g", ip="5.6.7.8") is not None
    assert limiter.check_now("g", ip="5.6.7.8").allowed is True  # type: ignore[union-attr]
    refused = await limiter.check("g", ip="5.6.7.8")
    assert refused is not None and not refused.allowed
    assert limiter.check_now("nope", ip="5.6.7.8") is None
    assert limiter.in_memory


async def test_check_now_needs_the_buckets_in_memory() -> None:
    class Remote:
        async def hit(self, key: str, limit: Limit, now: float, cost: int = 1) -> Decision:
            raise AssertionError("not called")

        async def close(self) -> None:
            return None

    limiter = RateLimiter(Remote(), {"g": Policy(per_ip=Limit(1, 60.0))})
    assert not limiter.in_memory
    with pytest.raises(RuntimeError, match="in memory"):
        limiter.check_now("g", ip="1.2.3.4")


def test_headers_when_allowed() -> None:
    limit = Limit(5, 10.0)
    d = Decision(allowed=True, tat=T0 + 4.0, remaining=3, retry_after=0.0, reset_after=4.0)
    assert headers(d, limit) == {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "3",
        "X-RateLimit-Reset": "1700000004.000",
        "X-RateLimit-Reset-After": "4.000",
    }


def test_headers_when_refused() -> None:
    limit = Limit(5, 10.0)
    d = Decision(allowed=False, tat=T0 + 10.0, remaining=0, retry_after=0.25, reset_after=9.99)
    h = headers(d, limit)
    assert h["Retry-After"] == "1"  # rounded up, never 0
    assert h["X-RateLimit-Remaining"] == "0"
    assert h["X-RateLimit-Reset-After"] == "9.990"
    assert headers(replace(d, retry_after=2.0), limit)["Retry-After"] == "2"
    assert headers(replace(d, retry_after=2.0001), limit)["Retry-After"] == "3"


async def test_verdict_headers_match() -> None:
    limiter, _ = make({"g": Policy(per_ip=Limit(1, 30.0))})
    await limiter.check("g", ip="1.1.1.1")
    v = await limiter.check("g", ip="1.1.1.1")
    assert isinstance(v, Verdict)
    assert v.headers() == headers(v.decision, v.limit)
    assert v.headers()["Retry-After"] == "30"
    assert v.headers()["X-RateLimit-Reset"] == f"{T0 + 30.0:.3f}"


@given(
    st.floats(0.0, 1e6),
    st.floats(0.0, 1e6),
    st.floats(0.0, 4e9),
)
def test_header_times_are_never_earlier_than_the_truth(
    retry_after: float, reset_after: float, tat: float
) -> None:
    """A client that waits what the headers say must not arrive early."""
    d = Decision(
        allowed=retry_after == 0.0,
        tat=tat,
        remaining=0,
        retry_after=retry_after,
        reset_after=reset_after,
    )
    h = headers(d, Limit(1, 1.0))
    assert float(h["X-RateLimit-Reset-After"]) >= reset_after
    assert float(h["X-RateLimit-Reset-After"]) - reset_after < 0.0011
    assert float(h["X-RateLimit-Reset"]) >= tat
    if d.allowed:
        assert "Retry-After" not in h
    else:
        seconds = int(h["Retry-After"])
        assert seconds >= 1
        assert seconds >= retry_after
        assert seconds - retry_after < 1 or seconds == 1
        assert seconds == max(1, math.ceil(retry_after))
