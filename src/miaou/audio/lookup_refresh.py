"""Pinned public lookups kept fresh for the segment fast paths (``fast_media``).

``media_files`` caches which blob a pinned public file is for ``LOOKUP_TTL_S``, so that a
track made private or deleted stops being served that soon. Under steady traffic, letting
those answers run out would send a request per file through the full route every few
seconds (each a query, a file read and the framework); instead, once an answer is half way
through its life, the lookups of its whole version are asked again in the background, in
one query. Each new lifetime still comes from a query that found the track public.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

import structlog

from miaou.audio import media_files, playback

if TYPE_CHECKING:
    from miaou.app import Node

log = structlog.get_logger("miaou.audio")

REFRESH_AHEAD_S = media_files.LOOKUP_TTL_S / 2
REFRESHES_AT_ONCE = 32  # versions; beyond, lookups are left to run out (the route asks)
NAMES_PER_QUERY = 500
RECENT_VERSIONS = 10_000  # bounds what waits for a refresh (dropped past it: run out)


class LookupRefresher:
    """Reads the cached lookups of pinned public files for both fast paths, and refreshes
    those of one version together, in one query (``media_files.refresh_public``): a
    listener's segments are all of one version, so a track takes one query per
    ``REFRESH_AHEAD_S`` or so however many of its segments are being played."""

    def __init__(self, node: Node) -> None:
        self.node = node
        # The files of each version looked up since its last refresh: the next one asks
        # for them all (the others run out).
        self.recent: dict[tuple[int, int], set[str]] = {}
        self.pending: dict[tuple[int, int], asyncio.Task[None]] = {}

    def lookup(self, track_id: int, version: int, name: str) -> str | None:
        """The blob if a fresh lookup is cached."""
        found = media_files.public_lookup(self.node.db, track_id, version, name)
        if found is None:
            return None
        left = found[0] - media_files.lookup_clock()
        if left < 0:
            return None
        key = (track_id, version)
        names = self.recent.get(key)
        if names is None:
            if len(self.recent) >= RECENT_VERSIONS:
                self.recent.clear()
            names = self.recent[key] = set()
        names.add(name)
        if left < REFRESH_AHEAD_S and key not in self.pending:
            self._start(key)
        return found[1]

    def _start(self, key: tuple[int, int]) -> None:
        if len(self.pending) >= REFRESHES_AT_ONCE:
            return
        task = asyncio.get_running_loop().create_task(self._ask(key))
        self.pending[key] = task
        task.add_done_callback(lambda _: self.pending.pop(key, None))

    async def _ask(self, key: tuple[int, int]) -> None:
        names = sorted(self.recent.pop(key, ()))
        try:
            for start in range(0, len(names), NAMES_PER_QUERY):
                await media_files.refresh_public(
                    self.node.db, *key, names[start : start + NAMES_PER_QUERY], playback.clock()
                )
        except Exception:  # they run out; the route asks for each when next requested
            log.warning("media_lookup_refresh_failed", exc_info=True)


_refreshers: WeakKeyDictionary[Node, LookupRefresher] = WeakKeyDictionary()


def refresher(node: Node) -> LookupRefresher:
    """The node's refresher (one per node, shared by both fast paths)."""
    found = _refreshers.get(node)
    if found is None:
        found = _refreshers[node] = LookupRefresher(node)
    return found
