"""Prometheus metrics of one Miaou node.

Each :class:`Metrics` owns its own :class:`CollectorRegistry`: several nodes may live in one
process (tests, benchmarks), and the global registry would make them collide or mix samples.

Label cardinality is kept bounded on purpose, since every label value is a new time series:
``route`` is a path *template* (never a raw path), ``method`` is folded to a known set and
``status`` is a three-digit code.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

import miaou
from miaou.observability.heap import HeapCollector

#: Route label for requests that matched no route (404, 405, bad host, ...).
UNMATCHED_ROUTE = "<unmatched>"

#: Methods kept as their own label value; anything else a client invents becomes "OTHER".
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)

#: API latencies: from cached reads (~1 ms) to slow uploads / upstream timeouts (10 s).
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

#: Pool states exported by :class:`DbPoolCollector`, in output order.
POOL_STATES = ("size", "checked_out", "overflow")

#: Returns current pool counters, e.g. ``{"size": 5, "checked_out": 1, "overflow": -4}``,
#: or ``None`` when the pool has no counters (SQLite's NullPool / StaticPool).
PoolStatsSource = Callable[[], Mapping[str, int] | None]


class DbPoolCollector(Collector):
    """Reads the DB pool at scrape time, so the gauges are never stale."""

    def __init__(self, source: PoolStatsSource | None = None) -> None:
        self.source = source

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "miaou_db_pool_connections",
            "Database connection pool, by state (size, checked_out, overflow).",
            labels=["state"],
        )

    def describe(self) -> Iterable[Metric]:
        # Lets the registry check names without calling the source at registration time.
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        stats: Mapping[str, int] | None = None
        if self.source is not None:
            try:
                stats = self.source()
            except Exception:
                # A scrape must not fail because the pool is being disposed or swapped.
                stats = None
        for state in POOL_STATES:
            if stats is not None and state in stats:
                family.add_metric([state], float(stats[state]))
        return [family]


#: Returns the gateway's counters by name (see ``GATEWAY_METRICS``), read at scrape time.
GatewayStatsSource = Callable[[], Mapping[str, int]]

#: name -> (kind, help) of the gateway figures exported by :class:`GatewayCollector`.
GATEWAY_METRICS: Mapping[str, tuple[str, str]] = {
    "connections": ("gauge", "Open gateway WebSocket connections."),
    "streams": ("gauge", "Streams this process follows for its sessions."),
    "deliveries": ("counter", "Event frames queued to gateway sessions."),
    "sessions_started": ("counter", "Gateway sessions that got READY or RESUMED."),
    "resumes": ("counter", "Gateway sessions resumed with a replay."),
    "invalid_sessions": ("counter", "RESUMEs answered with INVALID_SESSION."),
    "slow_consumers": ("counter", "Gateway connections closed as slow consumers (4010)."),
}


class GatewayCollector(Collector):
    """The gateway's figures, read from its counters at scrape time."""

    def __init__(self, source: GatewayStatsSource | None = None) -> None:
        self.source = source

    def _families(self, stats: Mapping[str, int]) -> list[Metric]:
        out: list[Metric] = []
        for name, (kind, text) in GATEWAY_METRICS.items():
            family: CounterMetricFamily | GaugeMetricFamily = (
                CounterMetricFamily(f"miaou_gateway_{name}", text)
                if kind == "counter"
                else GaugeMetricFamily(f"miaou_gateway_{name}", text)
            )
            if name in stats:
                family.add_metric([], float(stats[name]))
            out.append(family)
        return out

    def describe(self) -> Iterable[Metric]:
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        stats: Mapping[str, int] = {}
        if self.source is not None:
            try:
                stats = self.source()
            except Exception:
                stats = {}
        return self._families(stats)


def sqlalchemy_pool_stats(engine: Any) -> PoolStatsSource:
    """A :data:`PoolStatsSource` for a SQLAlchemy (async) engine.

    ``engine.pool`` is read on every call because ``engine.dispose()`` replaces the pool.
    Pools without counters (NullPool, StaticPool, used for SQLite) yield ``None``.
    """

    def read() -> Mapping[str, int] | None:
        pool = engine.pool
        try:
            return {
                "size": int(pool.size()),
                "checked_out": int(pool.checkedout()),
                "overflow": int(pool.overflow()),
            }
        except AttributeError:
            return None

    return read


class Metrics:
    """The metrics of one node, in a registry of its own."""

    def __init__(
        self, *, database: str = "unknown", pool_stats: PoolStatsSource | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self.requests_total = Counter(
            "miaou_http_requests_total",
            "HTTP requests handled, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_duration = Histogram(
            "miaou_http_request_duration_seconds",
            "HTTP request duration in seconds, by method, route template and status.",
            ["method", "route", "status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        # (method, route, status) -> its counter and histogram children: labels() checks
        # and locks on every call, a dict lookup does not.
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.requests_in_progress = Gauge(
            "miaou_http_requests_in_progress",
            "HTTP requests being handled right now.",
            registry=self.registry,
        )
        self.send_batches = Counter(
            "miaou_send_batches",
            "Transactions written by the message-send group commit.",
            registry=self.registry,
        )
        self.send_batch_items = Counter(
            "miaou_send_batch_items",
            "Message sends written by the group commit (over batches: the mean batch size).",
            registry=self.registry,
        )
        self.send_batch_retries = Counter(
            "miaou_send_batch_retries",
            "Send batches written again: another worker's later message ids had committed "
            "first in one of their channels (ids grow in commit order in a channel).",
            registry=self.registry,
        )
        self.loop_stalls = Counter(
            "miaou_event_loop_stalls",
            "Times the event loop did not turn for longer than loop_stall_ms.",
            registry=self.registry,
        )
        self.loop_stall_seconds = Counter(
            "miaou_event_loop_stall_seconds",
            "Seconds the event loop spent in those stalls.",
            registry=self.registry,
        )
        self.build_info = Info("miaou_build", "Miaou build information.", registry=self.registry)
        self.build_info.info(
            {
                "version": miaou.__version__,
                "python_version": platform.python_version(),
                "database": database,
            }
        )
        self.db_pool = DbPoolCollector(pool_stats)
        self.registry.register(self.db_pool)
        self.gateway = GatewayCollector()
        self.registry.register(self.gateway)
        self.registry.register(HeapCollector())

    def set_pool_stats(self, source: PoolStatsSource | None) -> None:
        """Attach (or detach) the pool reader once the engine exists."""
        self.db_pool.source = source

    def observe_request(self, method: str, route: str, status: int, duration_s: float) -> None:
        """Record one finished HTTP request; ``route`` must be a template, not a raw path."""
        method = method.upper()
        if method not in KNOWN_METHODS:
            method = "OTHER"
        route = route or UNMATCHED_ROUTE
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:
            # Bounded: methods are a known set, routes templates, statuses a few dozen.
            labels = (method, route, str(status))
            children = self._request_children[key] = (
                self.requests_total.labels(*labels),
                self.request_duration.labels(*labels),
            )
        total, duration = children
        total.inc()
        duration.observe(duration_s)

    def observe_send_batch(self, size: int) -> None:
        self.send_batches.inc()
        self.send_batch_items.inc(size)

    def observe_loop_stall(self, seconds: float) -> None:
        self.loop_stalls.inc()
        self.loop_stall_seconds.inc(seconds)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for a ``/metrics`` handler."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
