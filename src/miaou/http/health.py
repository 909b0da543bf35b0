"""Operational endpoints: ``/healthz`` (process up), ``/readyz`` (can serve), ``/metrics``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import MediaType, Request, Response, get

from miaou import __version__
from miaou.db import migrate
from miaou.errors import MiaouError
from miaou.http.auth import node_of


class Health(msgspec.Struct):
    status: str
    version: str


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, str]


@get("/healthz", tags=["operations"], summary="The process is up", opt={"rate_limit": None})
async def healthz() -> Health:
    return Health(status="ok", version=__version__)


@get(
    "/readyz",
    tags=["operations"],
    summary="Database reachable and migrations current",
    opt={"rate_limit": None},
)
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    node = node_of(request)
    checks: dict[str, str] = {}
    try:
        await node.db.ping()
        checks["database"] = "ok"
        current = await migrate.is_current(node.db)
        checks["migrations"] = "ok" if current else "pending"
    except MiaouError as exc:
        checks["database"] = f"unreachable: {exc.message}"
    except Exception as exc:
        checks.setdefault("database", f"error: {type(exc).__name__}")
    ready = all(v == "ok" for v in checks.values()) and len(checks) == 2
    return Response(
        Readiness(status="ready" if ready else "not_ready", checks=checks),
        status_code=200 if ready else 503,
    )


@get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics",
    opt={"rate_limit": None},
    media_type=MediaType.TEXT,
    include_in_schema=False,
)
async def metrics(request: Request[Any, Any, Any]) -> Response[bytes]:
    body, content_type = node_of(request).metrics.render()
    return Response(body, media_type=content_type)


@get(
    "/api/v1/openapi.json",
    tags=["operations"],
    summary="This API as OpenAPI 3.1",
    opt={"rate_limit": None},
    include_in_schema=False,
    media_type="application/json",
)
async def openapi_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = request.app.openapi_schema.to_schema()
    return schema


routes = [healthz, readyz, metrics, openapi_json]
