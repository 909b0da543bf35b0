"""A batch of sends: each send checked on its own (:func:`draft`), and the state of a batch
being written (:class:`Batch`) by :func:`miaou.chat.sends.write_sends`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from miaou.chat import mentions
from miaou.chat.access import ChannelAccess
from miaou.chat.media import StoredFile
from miaou.chat.message_models import (
    CONTENT_MAX,
    NONCE_MAX,
    AllowedMentions,
    Message,
    MessageCreate,
)
from miaou.config import MAX_ATTACHMENTS
from miaou.errors import InvalidInput, MiaouError

Outcome = Message | MiaouError


def invalid_field(field: str, problem: str, code: str = "invalid_input") -> InvalidInput:
    """400 naming the one field that is wrong (Discord's ``errors`` shape)."""
    return InvalidInput(f"Invalid {field}: {problem}.", code=code, errors={field: [problem]})


def clean_content(raw: str, *, allow_empty: bool = False) -> str:
    """Surrounding whitespace is dropped (Discord does); the markdown source is kept as is.
    ``allow_empty``: a message with attachments needs no text."""
    content = raw.strip()
    if not (0 if allow_empty else 1) <= len(content) <= CONTENT_MAX:
        raise invalid_field("content", f"must be 1 to {CONTENT_MAX} characters", "invalid_content")
    return content


def clean_nonce(nonce: str | int | None) -> str | None:
    """Stored as text: the integer 12 and the string "12" are the same nonce."""
    if nonce is None:
        return None
    text = str(nonce)
    if isinstance(nonce, bool) or not 1 <= len(text) <= NONCE_MAX:
        raise invalid_field(
            "nonce", f"must be an integer or a string of 1 to {NONCE_MAX} characters"
        )
    return text


def check_allowed_mentions(allowed: AllowedMentions | None) -> None:
    if allowed is None:
        return
    for kind in ("users", "roles"):
        listed: list[str] = getattr(allowed, kind)
        if listed and kind in allowed.parse:
            raise invalid_field("allowed_mentions", f'"{kind}" in parse and a {kind} list exclude')
        if len(listed) > 100:
            raise invalid_field("allowed_mentions", f"at most 100 {kind}")


@dataclass(frozen=True, slots=True)
class SendDraft:
    """A send whose body is valid on its own; the rest is checked in its transaction."""

    user_id: int
    channel_id: int
    body: MessageCreate
    files: Sequence[StoredFile]
    content: str
    nonce: str | None
    parsed: mentions.ParsedMentions


def draft(
    user_id: int, channel_id: int, body: MessageCreate, files: Sequence[StoredFile] = ()
) -> SendDraft:
    """Check what needs no database: 400 here, before the send is queued."""
    if len(files) > MAX_ATTACHMENTS:
        raise invalid_field("files", f"at most {MAX_ATTACHMENTS} files", "max_attachments")
    content = clean_content(body.content, allow_empty=bool(files))
    nonce = clean_nonce(body.nonce)
    check_allowed_mentions(body.allowed_mentions)
    return SendDraft(user_id, channel_id, body, files, content, nonce, mentions.parse(content))


class Batch:
    """One batch being written: which items are still in, and why the others are out."""

    def __init__(self, conn: AsyncConnection, items: Sequence[SendDraft], now: int) -> None:
        self.conn = conn
        self.items = items
        self.now = now
        self.outcomes: list[Outcome | None] = [None] * len(items)
        self.access: dict[int, ChannelAccess] = {}
        # Item index -> the message id that answers it (an earlier send with its nonce).
        self.repeats: dict[int, int] = {}
        # Item index -> the index of an earlier item of this batch with the same nonce.
        self.twins: dict[int, int] = {}
        self.stale_nonces: set[int] = set()

    def live(self) -> list[int]:
        """Items still to be written as new messages."""
        return [
            i
            for i in range(len(self.items))
            if self.outcomes[i] is None and i not in self.repeats and i not in self.twins
        ]

    def refuse(self, index: int, error: MiaouError) -> None:
        self.outcomes[index] = error
