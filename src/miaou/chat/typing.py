"""Typing indicators: ephemeral, announced on the channel's stream, never stored.

Discord's semantics: one announcement lasts 10 s (clients show "is typing" that long, or
until the person's message arrives). Repeats from the same person in the same channel
within ``REPEAT_MS`` are acknowledged without a new event, so a client that calls on every
keystroke costs one event per few seconds.
"""

from __future__ import annotations

from collections import OrderedDict

from miaou.chat.access import channel_access
from miaou.chat.message_store import stream_of
from miaou.chat.models import TEXT_TYPES, THREAD_TYPES
from miaou.chat.outbox import Outbox
from miaou.chat.permissions import Permission
from miaou.errors import InvalidInput
from miaou.ids import now_ms

TYPING_MS = 10_000
REPEAT_MS = 5_000
MAX_TRACKED = 50_000  # (user, channel) pairs remembered for REPEAT_MS


class TypingService:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._last: OrderedDict[tuple[int, int], int] = OrderedDict()

    async def start(self, user_id: int, channel_id: int) -> bool:
        """Announce that ``user_id`` types in ``channel_id``; False if it was a repeat."""
        now = now_ms()
        async with self.outbox.db.read() as conn:
            access = await channel_access(conn, channel_id, user_id, now)
        channel = access.channel
        if channel.type not in TEXT_TYPES:
            raise InvalidInput("Nobody types in this type of channel.", code="invalid_channel_type")
        is_thread = channel.type in THREAD_TYPES
        access.require(
            Permission.SEND_MESSAGES_IN_THREADS if is_thread else Permission.SEND_MESSAGES
        )
        key = (user_id, channel_id)
        last = self._last.get(key)
        if last is not None and now - last < REPEAT_MS:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        while len(self._last) > MAX_TRACKED:
            self._last.popitem(last=False)
        payload = {
            "channel_id": str(channel_id),
            "guild_id": None if channel.guild_id is None else str(channel.guild_id),
            "user_id": str(user_id),
            "timestamp": now,
        }
        await self.outbox.announce(self.outbox.event("TYPING_START", stream_of(channel), payload))
        return True
