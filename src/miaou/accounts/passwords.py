"""argon2id password hashing, off the event loop and bounded in concurrency.

Each hash costs tens of milliseconds of CPU and ``memory_kib`` of RAM, so it runs in a thread
(argon2's C code releases the GIL) and at most ``max_concurrent`` run at once: a burst of
logins queues instead of exhausting memory or starving the event loop.
"""

from __future__ import annotations

import asyncio
import os

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(
        self, *, time_cost: int = 3, memory_kib: int = 65_536, max_concurrent: int | None = None
    ) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=1, type=Type.ID
        )
        self._slots = asyncio.Semaphore(max_concurrent or os.cpu_count() or 2)
        # Verified when the user does not exist, so both paths cost the same time.
        self._dummy = self._hasher.hash("miaou-dummy-password")

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True if ``password`` matches; with ``stored_hash`` None, spends the same time."""
        async with self._slots:
            return await asyncio.to_thread(self._verify, stored_hash, password)

    def _verify(self, stored_hash: str | None, password: str) -> bool:
        try:
            self._hasher.verify(stored_hash or self._dummy, password)
        except (VerificationError, InvalidHashError):
            return False
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)
