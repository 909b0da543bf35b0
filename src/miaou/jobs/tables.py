"""The ``jobs`` table: one row per piece of durable background work.

A row is the whole truth about its job: what to do (``kind``, ``payload``), for what
(``subject``, e.g. ``track:123``, indexed so an API can show a thing's latest job), where it
stands (``state``, ``progress``, ``attempts``, ``error``, ``result``) and who holds it.

``run_after`` is the time from which the job may be claimed. For a queued job that is its
scheduled (or backed-off) time; for a running job it is the expiry of its holder's lease,
renewed by heartbeats. So one index, ``(state, run_after)``, finds both kinds of claimable
job: the queued ones that are due and the running ones whose worker stopped heartbeating.

``lease_id`` names one claim (a fresh snowflake each time): only the holder of the current
claim may renew or finish the job, so a worker whose lease expired and was taken over, or a
job cancelled under it, can no longer write. ``lease_owner`` says which worker holds it,
for operators.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from miaou.db.metadata import metadata

MAX_KIND = 64
MAX_SUBJECT = 64
MAX_OWNER = 128

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("kind", String(MAX_KIND), nullable=False),
    Column("subject", String(MAX_SUBJECT), nullable=False),
    # JSON bytes (msgspec), as given to enqueue.
    Column("payload", LargeBinary, nullable=False),
    # queued | running | succeeded | failed | cancelled
    Column("state", String(16), nullable=False),
    Column("progress", Float, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("max_attempts", Integer, nullable=False),
    Column("run_after", BigInteger, nullable=False),
    Column("lease_owner", String(MAX_OWNER), nullable=True),
    Column("lease_id", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    # JSON bytes of what the handler returned; set when the job succeeded.
    Column("result", LargeBinary, nullable=True),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Index(None, "state", "run_after"),
    Index(None, "subject", "id"),
)
