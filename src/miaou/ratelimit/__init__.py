"""Rate limiting: a pure GCRA core, bucket stores (memory, Redis) and named policies.

Typical use::

    limiter = RateLimiter(RedisStore(client), {"login": Policy(per_ip=Limit(5, 60.0))})
    verdict = await limiter.check("login", ip=client_ip)
    if verdict is not None and not verdict.allowed:
        raise RateLimited(verdict.retry_after)
"""

from .gcra import Decision, Limit, decide
from .limiter import Policy, RateLimiter, Scope, Verdict, headers
from .store import MemoryStore, RateLimitStore, RedisStore

__all__ = [
    "Decision",
    "Limit",
    "MemoryStore",
    "Policy",
    "RateLimitStore",
    "RateLimiter",
    "RedisStore",
    "Scope",
    "Verdict",
    "decide",
    "headers",
]
