"""Durable background work: jobs with state, progress, leases and retries, in our database.

No well-kept job library fits: procrastinate, PgQueuer and SAQ's Postgres queue are
PostgreSQL-only, arq, taskiq and Dramatiq need Redis or a broker (taskiq-sqlalchemy is a
young polling plugin without leases or progress), and huey is synchronous with its own
storage; none enqueues in our SQLAlchemy transaction on both SQLite and PostgreSQL. So the
queue is one table and a few statements of our own, migrated by Alembic like the rest.

- :mod:`~miaou.jobs.tables` the ``jobs`` table;
- :mod:`~miaou.jobs.queue` enqueue (in the caller's transaction), claim, heartbeat, finish;
- :mod:`~miaou.jobs.runner` the loop that claims jobs and runs their handlers;
- :mod:`~miaou.jobs.processes` CPU work in child processes, killable, with progress;
- :mod:`~miaou.jobs.rules` the pure rules (backoff, retry or not, error text).

Nothing is imported here: spawned job processes import :mod:`miaou.jobs.processes` and
should not pay for SQLAlchemy.
"""
