"""The operational surface: health, readiness, metrics, OpenAPI, request ids, limits."""

from __future__ import annotations

import io
import json

import httpx
from prometheus_client.parser import text_string_to_metric_families

from miaou import __version__
from miaou.db import migrate
from miaou.observability import configure_logging
from miaou.sdk import Client

PASSWORD = "correct horse battery"


async def test_healthz_and_readyz(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        health = await http.get("/healthz")
        ready = await http.get("/readyz")
    assert health.json() == {"status": "ok", "version": __version__}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "migrations": "ok"}}


async def test_readyz_reports_pending_migrations(node) -> None:
    await migrate.downgrade(node.node.db, "base")
    async with httpx.AsyncClient(base_url=node.url) as http:
        pending = await http.get("/readyz")
        await migrate.upgrade(node.node.db)
        again = await http.get("/readyz")
    assert pending.status_code == 503
    assert pending.json()["checks"]["migrations"] == "pending"
    assert again.status_code == 200


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


async def test_metrics_count_requests_by_route_template_and_status(node) -> None:
    async with Client(node.url, rate_limit_retries=0) as client:
        auth = await client.register("metric-user", PASSWORD)
        await client.user(auth.user.id)
        await client.user(auth.user.id)
    async with httpx.AsyncClient(base_url=node.url) as http:
        await http.get("/no/such/route")
        body = (await http.get("/metrics")).text
    samples = _samples(body)
    requests = {
        (labels["method"], labels["route"], labels["status"]): value
        for labels, value in samples["miaou_http_requests_total"]
    }
    assert requests[("GET", "/api/v1/users/{user_id}", "200")] == 2
    assert requests[("POST", "/api/v1/auth/register", "201")] == 1
    assert requests[("GET", "<unmatched>", "404")] == 1
    # Raw paths never become labels.
    assert not any(auth.user.id in route for _, route, _ in requests)
    histogram = samples["miaou_http_request_duration_seconds_count"]
    assert any(
        labels["route"] == "/api/v1/users/{user_id}" and labels["status"] == "200" and value == 2
        for labels, value in histogram
    )
    build = samples["miaou_build_info"]
    assert build[0][0]["version"] == __version__
    assert build[0][0]["database"] == node.node.db.dialect
    pool = {labels["state"]: value for labels, value in samples["miaou_db_pool_connections"]}
    assert set(pool) == {"size", "checked_out", "overflow"}
    # Every request returned its connection (SQLite keeps its one write connection open).
    assert pool["checked_out"] == (1 if node.node.db.is_sqlite else 0)


async def test_openapi_document_and_docs_page(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        spec = (await http.get("/api/v1/openapi.json")).json()
        docs = await http.get("/api/v1/docs")
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/users/@me",
        "/api/v1/users/{user_id}",
        "/api/v1/auth/sessions",
        "/api/v1/auth/sessions/{session_id}",
        "/api/v1/auth/password",
        "/readyz",
    ):
        assert path in paths, path
    assert set(paths["/api/v1/users/@me"]) == {"get", "patch"}
    assert "bearer" in spec["components"]["securitySchemes"]
    assert docs.status_code == 200 and "text/html" in docs.headers["content-type"]


async def test_request_id_is_echoed_or_made(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        given = await http.get("/healthz", headers={"x-request-id": "trace-123"})
        made = await http.get("/healthz")
        hostile = await http.get("/healthz", headers={"x-request-id": "bad id\twith junk"})
    assert given.headers["x-request-id"] == "trace-123"
    assert len(made.headers["x-request-id"]) >= 16
    assert hostile.headers["x-request-id"] != "bad id\twith junk"


async def test_errors_have_one_shape(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        missing = await http.get("/api/v1/nothing-here")
        wrong_method = await http.put("/api/v1/auth/login", json={})
    for response, status, code in (
        (missing, 404, "not_found"),
        (wrong_method, 405, "method_not_allowed"),
    ):
        assert response.status_code == status
        body = response.json()
        assert set(body) == {"code", "message", "errors"}
        assert body["code"] == code


async def test_body_size_limit(start_node) -> None:
    node = await start_node(max_body_bytes=4096)
    big = {"username": "bigbody", "password": "x" * 5000}
    async with httpx.AsyncClient(base_url=node.url) as http:
        too_big = await http.post("/api/v1/auth/register", json=big)
        fine = await http.post(
            "/api/v1/auth/register", json={"username": "bigbody", "password": PASSWORD}
        )
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "payload_too_large"
    assert fine.status_code == 201  # the refused request created nothing


async def test_tokens_and_passwords_never_reach_the_logs(node) -> None:
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)
    try:
        async with Client(node.url) as client:
            auth = await client.register("secretive", PASSWORD)
            await client.login("secretive", PASSWORD)
            await client.request("GET", "/api/v1/users/@me", params={"token": auth.token})
            await client.change_password(PASSWORD, "another passphrase")
    finally:
        configure_logging("warning", json=True)
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    assert any(line.get("event") == "request" for line in lines)
    text = stream.getvalue()
    assert auth.token not in text
    assert auth.token[4:] not in text
    assert PASSWORD not in text and "another passphrase" not in text
