"""Metrics, logging and the observability middleware, against a small real Litestar app."""

from __future__ import annotations

import io
import json
import logging
import os
import platform
import re
from collections.abc import AsyncIterator, Iterator, MutableMapping
from typing import Any

import httpx
import pytest
import structlog
from litestar import Litestar, Request, Response, get, post
from litestar.handlers import asgi
from litestar.params import FromPath, JSONBody
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool, QueuePool

import miaou
from miaou.errors import ConfigError
from miaou.observability import (
    MOUNT_ROUTE,
    REDACTED,
    UNMATCHED_ROUTE,
    Metrics,
    ObservabilityMiddleware,
    configure_logging,
    get_logger,
    redact_secrets,
    sqlalchemy_pool_stats,
)
from miaou.observability.middleware import _fresh_id

USER_ROUTE = "/api/v1/users/{user_id}"  # Litestar's template drops the ":int" converter


# --- the app under test ---------------------------------------------------------------------


def make_app(metrics: Metrics) -> ObservabilityMiddleware:
    @get("/api/v1/users/{user_id:int}")
    async def get_user(user_id: FromPath[int], request: Request[Any, Any, Any]) -> dict[str, Any]:
        return {"id": user_id, "request_id": request.state.request_id}

    @get("/boom")
    async def boom() -> None:
        raise RuntimeError("kaboom")

    @get("/healthz")
    async def healthz() -> str:
        return "ok"

    @get("/metrics")
    async def metrics_endpoint() -> Response[bytes]:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @get("/in-progress")
    async def in_progress() -> dict[str, float | None]:
        value = metrics.registry.get_sample_value("miaou_http_requests_in_progress")
        return {"value": value}

    @post("/login", status_code=200)
    async def login(data: JSONBody[dict[str, str]]) -> dict[str, str]:
        get_logger("miaou.test").info(
            "login attempt",
            username=data["username"],
            password=data["password"],
            body=data,
            headers={"Authorization": "Bearer header-secret"},
        )
        return {"ok": "yes"}

    @asgi("/mounted", is_mount=True, copy_scope=False)
    async def mounted(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    # logging_config=None: Litestar's default config would dictConfig() the root logger of
    # the whole test process.
    app = Litestar(
        [get_user, boom, healthz, metrics_endpoint, in_progress, login, mounted],
        logging_config=None,
    )
    return ObservabilityMiddleware(app, metrics=metrics)


@pytest.fixture
def metrics() -> Metrics:
    return Metrics(database="sqlite")


@pytest.fixture
async def client(metrics: Metrics) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """configure_logging() changes process-wide state; put it back after the test."""
    saved_config = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")
    saved = {n: (logging.getLogger(n).level, logging.getLogger(n).propagate) for n in names}
    yield
    structlog.configure(**saved_config)
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)
    for n, (level, propagate) in saved.items():
        logging.getLogger(n).setLevel(level)
        logging.getLogger(n).propagate = propagate


def count(metrics: Metrics, method: str, route: str, status: str) -> float | None:
    labels = {"method": method, "route": route, "status": status}
    return metrics.registry.get_sample_value("miaou_http_requests_total", labels)


def request_logs(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [e for e in logs if e["event"] == "request"]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- metrics through the middleware ---------------------------------------------------------


async def test_route_label_is_the_template_not_the_raw_path(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    for user_id in (42, 7):
        assert (await client.get(f"/api/v1/users/{user_id}")).status_code == 200

    assert count(metrics, "GET", USER_ROUTE, "200") == 2
    hist = {"method": "GET", "route": USER_ROUTE, "status": "200"}
    assert metrics.registry.get_sample_value("miaou_http_request_duration_seconds_count", hist) == 2
    total = metrics.registry.get_sample_value("miaou_http_request_duration_seconds_sum", hist)
    assert total is not None and total > 0

    body, content_type = metrics.render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    assert "/api/v1/users/42" not in text and "/api/v1/users/7" not in text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["miaou_http_request_duration_seconds"].type == "histogram"
    buckets = {
        s.labels["le"]
        for s in families["miaou_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert {"0.001", "10.0", "+Inf"} <= buckets


async def test_status_labels_and_unmatched_routes(
    client: httpx.AsyncClient, metrics: Metrics
) -> None:
    assert (await client.get("/boom")).status_code == 500
    assert (await client.get("/no/such/page")).status_code == 404
    assert (await client.get("/api/v1/users/not-an-int")).status_code == 404
    assert (await client.post("/api/v1/users/1")).status_code == 405
    assert (await client.request("BREW", "/healthz")).status_code == 405
    assert (await client.get("/mounted/some/where")).status_code == 204

    assert count(metrics, "GET", "/boom", "500") == 1
    assert count(metrics, "GET", UNMATCHED_ROUTE, "404") == 2
    assert count(metrics, "POST", UNMATCHED_ROUTE, "405") == 1
    assert count(metrics, "OTHER", UNMATCHED_ROUTE, "405") == 1  # invented methods folded
    assert count(metrics, "GET", MOUNT_ROUTE, "204") == 1
    text = metrics.render()[0].decode()
    assert "/no/such/page" not in text and "not-an-int" not in text and "BREW" not in text


async def test_metrics_endpoint_serves_render(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'miaou_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in (
        response.text
    )


async def test_in_progress_gauge(client: httpx.AsyncClient, metrics: Metrics) -> None:
    assert (await client.get("/in-progress")).json() == {"value": 1.0}
    assert metrics.registry.get_sample_value("miaou_http_requests_in_progress") == 0.0


@pytest.mark.parametrize("started", [False, True], ids=["before-start", "mid-body"])
async def test_app_raising_counts_500_logs_error_and_reraises(
    metrics: Metrics, started: bool
) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        if started:  # e.g. a streaming body failing after a 200 went out
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise RuntimeError("escaped the framework")

    transport = httpx.ASGITransport(app=ObservabilityMiddleware(broken, metrics=metrics))
    with structlog.testing.capture_logs() as logs:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            with pytest.raises(RuntimeError, match="escaped the framework"):
                await c.get("/anything")

    assert count(metrics, "GET", UNMATCHED_ROUTE, "500") == 1
    assert metrics.registry.get_sample_value("miaou_http_requests_in_progress") == 0.0
    [line] = request_logs(logs)
    assert line["status"] == 500 and line["log_level"] == "error"


async def test_app_returning_without_response_counts_500(metrics: Metrics) -> None:
    async def silent(scope: Any, receive: Any, send: Any) -> None:
        return None

    mw = ObservabilityMiddleware(silent, metrics=metrics)
    await mw({"type": "http", "method": "GET", "path": "/", "headers": []}, _receive, _discard)
    assert count(metrics, "GET", UNMATCHED_ROUTE, "500") == 1


def test_separate_registries_do_not_share_samples() -> None:
    a, b = Metrics(), Metrics()
    a.observe_request("GET", "/x", 200, 0.01)
    assert count(a, "GET", "/x", "200") == 1
    assert count(b, "GET", "/x", "200") is None


def test_build_info() -> None:
    labels = {
        "version": miaou.__version__,
        "python_version": platform.python_version(),
        "database": "postgresql",
    }
    assert Metrics(database="postgresql").registry.get_sample_value("miaou_build_info", labels) == 1


# --- DB pool collector ----------------------------------------------------------------------


def pool_value(metrics: Metrics, state: str) -> float | None:
    return metrics.registry.get_sample_value("miaou_db_pool_connections", {"state": state})


def test_pool_collector_reads_source_at_scrape_time() -> None:
    stats = {"size": 5, "checked_out": 2, "overflow": -3}
    metrics = Metrics(pool_stats=lambda: stats)
    assert [pool_value(metrics, s) for s in ("size", "checked_out", "overflow")] == [5, 2, -3]
    stats["checked_out"] = 4
    assert pool_value(metrics, "checked_out") == 4
    assert 'miaou_db_pool_connections{state="size"} 5.0' in metrics.render()[0].decode()


def test_pool_collector_without_stats_emits_no_samples() -> None:
    def failing() -> dict[str, int]:
        raise RuntimeError("pool disposed")

    metrics = Metrics()
    assert pool_value(metrics, "size") is None
    metrics.set_pool_stats(lambda: None)
    assert pool_value(metrics, "size") is None
    metrics.set_pool_stats(failing)
    assert pool_value(metrics, "size") is None  # and render() does not raise
    assert b"# TYPE miaou_db_pool_connections gauge" in metrics.render()[0]
    metrics.set_pool_stats(lambda: {"size": 1})
    assert pool_value(metrics, "size") == 1


def test_sqlalchemy_pool_stats(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = create_engine(url, poolclass=QueuePool, pool_size=3, max_overflow=2)
    try:
        metrics = Metrics(database=engine.dialect.name, pool_stats=sqlalchemy_pool_stats(engine))
        with engine.connect():
            assert pool_value(metrics, "checked_out") == 1
            assert pool_value(metrics, "size") == 3
        assert pool_value(metrics, "checked_out") == 0
    finally:
        engine.dispose()

    no_counters = create_engine(url, poolclass=NullPool)
    assert sqlalchemy_pool_stats(no_counters)() is None
    no_counters.dispose()


# --- request id -----------------------------------------------------------------------------


async def test_valid_request_id_is_echoed_and_visible_to_handlers(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/users/1", headers={"X-Request-ID": "abc-123.X_y"})
    assert response.headers["x-request-id"] == "abc-123.X_y"
    assert response.json()["request_id"] == "abc-123.X_y"


@pytest.mark.parametrize(
    "bad", ["", "has space", "semi;colon", "x" * 65, "caf\u00e9", "a\tb", "<script>"]
)
async def test_bad_request_id_is_replaced(client: httpx.AsyncClient, bad: str) -> None:
    response = await client.get(
        "/api/v1/users/1", headers=[(b"X-Request-ID", bad.encode("latin-1"))]
    )
    generated = response.headers["x-request-id"]
    assert generated != bad
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert response.json()["request_id"] == generated


async def test_request_id_generated_unique_and_on_error_responses(
    client: httpx.AsyncClient,
) -> None:
    ids = {(await client.get("/healthz")).headers["x-request-id"] for _ in range(3)}
    assert len(ids) == 3
    for path in ("/boom", "/no/such/page"):
        assert re.fullmatch(r"[0-9a-f]{32}", (await client.get(path)).headers["x-request-id"])
    assert (await client.get("/healthz", headers={"x-request-id": "64" * 32})).headers[
        "x-request-id"
    ] == "64" * 32


async def test_inner_request_id_header_is_replaced_not_duplicated(metrics: Metrics) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"X-Request-Id", b"inner"), (b"content-type", b"text/plain")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hi"})

    transport = httpx.ASGITransport(app=ObservabilityMiddleware(app, metrics=metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        response = await c.get("/", headers={"x-request-id": "outer"})
    assert response.headers.get_list("x-request-id") == ["outer"]
    assert response.headers["content-type"] == "text/plain"


# --- pass-through ---------------------------------------------------------------------------


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: Any) -> None:
    return None


@pytest.mark.parametrize("scope_type", ["websocket", "lifespan"])
async def test_non_http_scopes_pass_through_untouched(metrics: Metrics, scope_type: str) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope, receive, send))

    scope = {"type": scope_type, "path": "/ws", "headers": []}
    await ObservabilityMiddleware(app, metrics=metrics)(scope, _receive, _discard)
    [(got_scope, got_receive, got_send)] = seen
    assert got_scope is scope and got_receive is _receive and got_send is _discard
    assert scope == {"type": scope_type, "path": "/ws", "headers": []}
    assert "miaou_http_requests_total{" not in metrics.render()[0].decode()


# --- the request log line -------------------------------------------------------------------


async def test_one_request_log_line_without_query_string(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = await client.get(
            "/api/v1/users/42?token=abc&x=1", headers={"x-request-id": "req-1"}
        )
    assert response.status_code == 200
    [line] = request_logs(logs)
    assert line == {
        "event": "request",
        "log_level": "info",
        "request_id": "req-1",
        "method": "GET",
        "route": USER_ROUTE,
        "path": "/api/v1/users/42",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "client_ip": "127.0.0.1",
    }
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["duration_ms"] == round(line["duration_ms"], 2)
    assert "abc" not in repr(logs) and "token" not in repr(logs)


async def test_log_levels_quiet_paths_and_errors(client: httpx.AsyncClient) -> None:
    with structlog.testing.capture_logs() as logs:
        await client.get("/metrics")
        await client.get("/healthz")
        await client.get("/api/v1/users/1")
        await client.get("/no/such/page")
        await client.get("/boom")
    levels = {(e["path"], e["log_level"]) for e in request_logs(logs)}
    assert levels == {
        ("/metrics", "debug"),
        ("/healthz", "debug"),
        ("/api/v1/users/1", "info"),
        ("/no/such/page", "info"),
        ("/boom", "error"),
    }
    assert {e["route"] for e in request_logs(logs) if e["path"] == "/no/such/page"} == {
        UNMATCHED_ROUTE
    }


async def test_json_output_redacts_secrets_and_carries_request_id(
    client: httpx.AsyncClient, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    response = await client.post(
        "/login?token=abc-query-secret",
        json={"username": "bob", "password": "hunter2"},
        headers={"x-request-id": "req-login"},
    )
    assert response.status_code == 200

    text = out.getvalue()
    for secret in ("hunter2", "abc-query-secret", "header-secret", "token="):
        assert secret not in text
    lines = [json.loads(raw) for raw in text.splitlines()]
    [login] = [e for e in lines if e["event"] == "login attempt"]
    assert login["password"] == REDACTED
    assert login["body"] == {"username": "bob", "password": REDACTED}
    assert login["headers"] == {"Authorization": REDACTED}
    assert login["request_id"] == "req-login"  # bound by the middleware via contextvars
    [request] = [e for e in lines if e["event"] == "request"]
    assert request["path"] == "/login" and request["route"] == "/login"
    assert request["request_id"] == "req-login" and request["logger"] == "miaou.http"
    assert request["level"] == "info"


async def test_below_the_level_no_request_line_is_made_and_errors_still_are(
    client: httpx.AsyncClient, restore_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("warning", json=True, stream=out)
    await client.get("/api/v1/users/1")
    await client.get("/no/such/page")
    await client.get("/boom")
    lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
    assert [(e["path"], e["level"]) for e in request_logs(lines)] == [("/boom", "error")]
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    await client.get("/api/v1/users/1")
    lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
    assert [(e["path"], e["level"]) for e in request_logs(lines)] == [("/api/v1/users/1", "info")]


# --- redaction ------------------------------------------------------------------------------


def test_redact_secrets_masks_nested_and_case_insensitive_without_mutating() -> None:
    event = {
        "event": "x",
        "user": "bob",
        "Password": "p1",
        "access_token": "t1",
        "config": {"Client_Secret": "s1", "inner": {"X-API-KEY": "k1", "apikey": "k2"}},
        "headers": [(b"authorization", b"Bearer t2"), (b"accept", b"*/*")],
        "items": [{"cookie": "c1"}, {"set-cookie": "c2"}, {"safe": 1}],
    }
    original = json.dumps(event, default=repr)
    out = redact_secrets(None, "info", event)
    assert out == {
        "event": "x",
        "user": "bob",
        "Password": REDACTED,
        "access_token": REDACTED,
        "config": {"Client_Secret": REDACTED, "inner": {"X-API-KEY": REDACTED, "apikey": REDACTED}},
        "headers": [(b"authorization", REDACTED), (b"accept", b"*/*")],
        "items": [{"cookie": REDACTED}, {"set-cookie": REDACTED}, {"safe": 1}],
    }
    assert json.dumps(event, default=repr) == original


def test_redact_secrets_cuts_deep_or_cyclic_values() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    out = redact_secrets(None, "info", {"data": cyclic})
    assert REDACTED in json.dumps(out)


# --- configure_logging ----------------------------------------------------------------------


def test_json_when_not_a_tty(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging("info", stream=out)
    get_logger("miaou.test").info("hello", n=1)
    line = json.loads(out.getvalue())
    assert line["event"] == "hello" and line["n"] == 1
    assert line["level"] == "info" and line["logger"] == "miaou.test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])


def test_console_on_a_tty(restore_logging: None) -> None:
    out = FakeTTY()
    configure_logging("info", stream=out)
    get_logger("miaou.test").info("hello", n=1)
    text = out.getvalue()
    assert "hello" in text and "miaou.test" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_explicit_json_flag_wins(restore_logging: None) -> None:
    tty = FakeTTY()
    configure_logging(json=True, stream=tty)
    get_logger("t").info("on tty")
    assert json.loads(tty.getvalue())["event"] == "on tty"

    plain = io.StringIO()
    configure_logging(json=False, stream=plain)
    get_logger("t").info("not a tty")
    assert "not a tty" in plain.getvalue()
    with pytest.raises(json.JSONDecodeError):
        json.loads(plain.getvalue())


def test_stdlib_logging_goes_through_the_same_renderer(restore_logging: None) -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    logging.getLogger("uvicorn.error").info("Started server process %s", 123)
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /?token=abc HTTP/1.1" 200')
    logging.getLogger("some.lib").warning("careful", extra={"password": "x"})
    lines = [json.loads(raw) for raw in out.getvalue().splitlines()]
    assert [(e["logger"], e["level"], e["event"]) for e in lines] == [
        ("uvicorn.error", "info", "Started server process 123"),
        ("some.lib", "warning", "careful"),
    ]
    assert all(e["timestamp"].endswith("Z") for e in lines)


def test_configure_twice_does_not_duplicate_and_level_applies(restore_logging: None) -> None:
    first = io.StringIO()
    configure_logging("debug", json=True, stream=first)
    out = io.StringIO()
    configure_logging("warning", json=True, stream=out)
    configure_logging("WARNING", json=True, stream=out)
    log = get_logger("miaou.test")
    log.info("dropped")
    log.warning("kept")
    assert [json.loads(raw)["event"] for raw in out.getvalue().splitlines()] == ["kept"]
    assert first.getvalue() == ""


def test_unknown_level_is_a_config_error(restore_logging: None) -> None:
    with pytest.raises(ConfigError):
        configure_logging("verbose")


def test_generated_request_ids_differ_in_a_forked_worker() -> None:
    # `miaou serve --workers N` may fork: a child must not repeat its parent's ids.
    first, second = _fresh_id(), _fresh_id()
    assert first != second and first[:16] == second[:16]
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report one id and leave at once
        os.write(write_end, _fresh_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read_end, 64).decode()
    os.close(read_end)
    os.close(write_end)
    assert re.fullmatch(r"[0-9a-f]{32}", child)
    assert child[:16] != first[:16]
