"""Pieces every REST route shares: the request type, the caller, ids in paths, audit reasons."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from litestar import Request
from litestar.di import NamedDependency

from miaou.accounts.service import Principal
from miaou.errors import InvalidInput, NotFound
from miaou.ids import parse_id

AnyRequest = Request[Any, Any, Any]
Who = NamedDependency[Principal]


def path_id(text: str, what: str) -> int:
    """An id from a path segment; junk answers 404 ``unknown_<what>`` like a missing id."""
    value = parse_id(text)
    if value is None:
        raise NotFound(f"No such {what}.", code=f"unknown_{what}")
    return value


def query_id(text: str | None, name: str) -> int | None:
    """An optional id from the query string; junk there is a 400 naming the parameter."""
    if text is None:
        return None
    value = parse_id(text)
    if value is None:
        raise InvalidInput(f"Invalid {name}.", errors={name: ["is not an id"]})
    return value


def audit_reason(request: AnyRequest) -> str | None:
    """Discord's ``X-Audit-Log-Reason`` header, URL-encoded UTF-8 as Discord has it (a
    header value cannot carry most of Unicode, and browsers refuse to send it), decoded
    and cut to the stored length."""
    reason = request.headers.get("x-audit-log-reason")
    return unquote(reason, errors="replace")[:512] if reason else None
