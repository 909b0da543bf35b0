"""A small in-process cache of bearer-token authentications.

Why: every authenticated request maps its token to a session and user, and without a cache
that is a database read transaction per request, most of the cost of a cheap one. A token
seen in the last ``ttl`` seconds (``auth_cache_seconds``) is answered from here instead.

What: a bounded LRU (``max_entries``, least recently used evicted first) keyed by the token's
SHA-256 hash, never the token itself. An entry holds what authentication decides with; its
age is measured on an injected monotonic clock, so tests move time instead of sleeping.

Revocation: the account service invalidates entries in the same call that commits a logout,
a revoked session, a password change, pruned sessions or a disabled account, so on this node
a revoked token is refused at once. Nothing tells other nodes (or a running node, when
``miaou user disable`` runs in its own process): they accept a revoked token until their
entry expires, at most ``ttl`` seconds later.

A lookup that read the database before a revocation committed must not cache what it read
after the invalidation ran: it passes the ``generation`` it saw before reading, and the
entry is dropped if any invalidation happened since.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 10_000


@dataclass(slots=True)
class CachedAuth:
    """One token's authentication as last read from the database."""

    user_id: int
    session_id: int
    is_admin: bool
    disabled: bool
    # Wall-clock Unix ms, as ``sessions.last_used_at``; the service updates it when it
    # writes a touch, so a cached session is touched once per interval, not per request.
    last_used_at: int
    # Monotonic seconds on the cache's clock.
    cached_at: float


class TokenCache:
    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``ttl`` in seconds; 0 disables the cache (nothing is stored)."""
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        # Bumped by every invalidation; see the module docstring.
        self.generation = 0
        self._entries: OrderedDict[bytes, CachedAuth] = OrderedDict()
        # user_id -> session_id -> token hash: per-user invalidation without a scan.
        self._by_user: dict[int, dict[int, bytes]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: bytes) -> bool:
        return key in self._entries

    def get(self, key: bytes) -> CachedAuth | None:
        """The entry for a token hash, unless absent or older than the TTL."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.clock() - entry.cached_at >= self.ttl:
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(
        self,
        key: bytes,
        *,
        user_id: int,
        session_id: int,
        is_admin: bool,
        disabled: bool,
        last_used_at: int,
        generation: int,
    ) -> CachedAuth:
        """Cache what was read; returns the entry, which is not kept when the cache is
        disabled or an invalidation happened after ``generation`` was read."""
        entry = CachedAuth(user_id, session_id, is_admin, disabled, last_used_at, self.clock())
        if self.ttl <= 0 or self.max_entries <= 0 or generation != self.generation:
            return entry
        self._remove(key)
        self._entries[key] = entry
        self._by_user.setdefault(user_id, {})[session_id] = key
        while len(self._entries) > self.max_entries:
            self._remove(next(iter(self._entries)))
        return entry

    def invalidate_session(self, user_id: int, session_id: int) -> None:
        self.generation += 1
        key = self._by_user.get(user_id, {}).get(session_id)
        if key is not None:
            self._remove(key)

    def invalidate_user(self, user_id: int, *, keep_session: int | None = None) -> None:
        """Forget every session of a user, except ``keep_session`` if given."""
        self.generation += 1
        for session_id, key in list(self._by_user.get(user_id, {}).items()):
            if session_id != keep_session:
                self._remove(key)

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        sessions = self._by_user.get(entry.user_id)
        if sessions is not None and sessions.get(entry.session_id) == key:
            del sessions[entry.session_id]
            if not sessions:
                del self._by_user[entry.user_id]
