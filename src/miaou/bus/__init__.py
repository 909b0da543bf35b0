"""Fan-out of events: services publish after commit, the gateway delivers."""

from miaou.bus.base import Bus, Event, Subscription
from miaou.bus.memory import MemoryBus
from miaou.bus.redis import RedisBus

__all__ = ["Bus", "Event", "MemoryBus", "RedisBus", "Subscription"]
