"""Observability of a Miaou node: Prometheus metrics, structured logs, request ids.

Wiring (see each module for details)::

    configure_logging(settings.log_level)
    metrics = Metrics(database=engine.dialect.name, pool_stats=sqlalchemy_pool_stats(engine))
    asgi_app = ObservabilityMiddleware(litestar_app, metrics=metrics)
    uvicorn.Config(asgi_app, log_config=None, access_log=False, ...)
"""

from miaou.observability.logging import REDACTED, configure_logging, get_logger, redact_secrets
from miaou.observability.metrics import (
    UNMATCHED_ROUTE,
    DbPoolCollector,
    Metrics,
    PoolStatsSource,
    sqlalchemy_pool_stats,
)
from miaou.observability.middleware import MOUNT_ROUTE, ObservabilityMiddleware

__all__ = [
    "MOUNT_ROUTE",
    "REDACTED",
    "UNMATCHED_ROUTE",
    "DbPoolCollector",
    "Metrics",
    "ObservabilityMiddleware",
    "PoolStatsSource",
    "configure_logging",
    "get_logger",
    "redact_secrets",
    "sqlalchemy_pool_stats",
]
