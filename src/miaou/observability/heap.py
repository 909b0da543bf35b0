"""The served process's long-lived objects, kept out of the garbage collector's way.

Why: CPython's full (generation 2) collection walks every tracked object. After startup a
node holds about 170,000 of them (modules, classes, SQLAlchemy's tables and compiled
statements, Litestar's routes), none of which will ever be garbage, and a full collection
of them took 77-92 ms here: every request and gateway frame waiting behind it. Freezing them
once the node has started (``gc.freeze``, as Instagram's servers do) leaves the collector
only what was made since: the sessions and requests that can become garbage.

Only ``miaou serve`` (and each of its ``--workers``) freezes: a process that starts and
stops many nodes (the tests) would pin each one's objects for good.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


def freeze_startup_objects() -> int:
    """Collect what startup left behind, then move every surviving object to the
    permanent generation; returns how many are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class HeapCollector(Collector):
    """The garbage collector's state, read at scrape time."""

    def collect(self) -> Iterable[Metric]:
        frozen = GaugeMetricFamily(
            "miaou_gc_frozen_objects",
            "Objects in the permanent generation (frozen after startup; never collected).",
        )
        frozen.add_metric([], gc.get_freeze_count())
        yield frozen
        collections = GaugeMetricFamily(
            "miaou_gc_collections",
            "Collections the garbage collector has run since the process started, by generation.",
            labels=["generation"],
        )
        for generation, stats in enumerate(gc.get_stats()):
            collections.add_metric([str(generation)], stats["collections"])
        yield collections
