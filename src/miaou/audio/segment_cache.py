"""Segment answers built once and kept in memory, for the fast paths (``fast_media``,
``segment_protocol``).

An answer is everything a 200 for one segment says but the status line and the Date: its
header block, already encoded, and the bytes. It is keyed by the blob's sha256 and the file
name (the name gives the content type and the download name), so it never goes stale:
content-addressed bytes do not change. What decides whether it may still be served is the
lookup cache of :mod:`miaou.audio.media_files` (a track made private or deleted is out of it
within ``LOOKUP_TTL_S``), which every fast answer consults first; an answer whose blob was
since collected is never reached again and leaves with the least recently used.

Bounded by ``media_memory_cache_bytes`` per process (0: nothing is kept, every repeat
request reads its file), least recently used first out.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from miaou.audio import media_files

if TYPE_CHECKING:
    from miaou.app import Node

Headers = list[tuple[bytes, bytes]]


class Answer:
    """A 200 for the blob ``sha256`` served as the file ``name``: the same headers as the
    full route's (``media_files.media_response`` for a pinned public file)."""

    __slots__ = ("body", "head", "headers", "size")

    def __init__(self, sha256: str, name: str, body: bytes) -> None:
        self.body = body
        self.headers: Headers = [
            (b"content-type", media_files.content_type(name).encode()),
            (b"content-length", str(len(body)).encode()),
            (b"etag", f'"{sha256}"'.encode()),
            (
                b"cache-control",
                media_files.cache_control(name, pinned=True, seconds_left=None).encode(),
            ),
            (b"accept-ranges", b"bytes"),
            (
                b"content-disposition",
                f'inline; filename="{media_files.download_name(name)}"'.encode(),
            ),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", media_files.SANDBOX.encode()),
        ]
        # As written on the wire after the status line and the server's default headers.
        self.head = b"".join(k + b": " + v + b"\r\n" for k, v in self.headers) + b"\r\n"
        self.size = len(body) + len(self.head)


class Answers:
    """The least recently used answers whose sizes add up to at most ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size = 0
        self._entries: OrderedDict[tuple[str, str], Answer] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, sha256: str, name: str) -> Answer | None:
        key = (sha256, name)
        answer = self._entries.get(key)
        if answer is not None:
            self._entries.move_to_end(key)
        return answer

    def put(self, sha256: str, name: str, answer: Answer) -> None:
        if answer.size > self.max_bytes:
            return
        key = (sha256, name)
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= old.size
        self._entries[key] = answer
        self.size += answer.size
        while self.size > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self.size -= evicted.size

    def clear(self) -> None:
        self._entries.clear()
        self.size = 0


_by_node: WeakKeyDictionary[Node, Answers] = WeakKeyDictionary()


def of(node: Node) -> Answers:
    """The node's answers (one cache per node, shared by both fast paths)."""
    answers = _by_node.get(node)
    if answers is None:
        answers = _by_node[node] = Answers(node.settings.media_memory_cache_bytes)
    return answers
