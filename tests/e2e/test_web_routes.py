"""Serving the web client: content types, caching, security headers, and no shadowing."""

from __future__ import annotations

import httpx
import pytest

from miaou.server import RunningNode
from miaou.web.routes import CSP

pytestmark = pytest.mark.database_kinds("sqlite")

CLIENT_ROUTES = [
    "/",
    "/login",
    "/register",
    "/channels/@me",
    "/channels/1/2",
    "/invite/abc",
    "/tracks",
    "/tracks/upload",
    "/tracks/123",
]


def assert_secured(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


async def test_client_routes_serve_index_with_strict_headers(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        index = None
        for path in CLIENT_ROUTES:
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert_secured(response)
            assert "x-ratelimit-limit" not in response.headers  # not rate limited
            index = index or response.text
            assert response.text == index
        assert '<script type="module" src="/static/js/main.js">' in index
        assert "<script>" not in index and "style=" not in index  # nothing inline


async def test_static_files_types_etags_and_refusals(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        for path, media_type in [
            ("/static/js/main.js", "text/javascript; charset=utf-8"),
            ("/static/css/base.css", "text/css; charset=utf-8"),
            ("/static/icon.svg", "image/svg+xml"),
        ]:
            response = await http.get(path)
            assert response.status_code == 200, path
            assert response.headers["content-type"] == media_type
            assert response.headers["cache-control"] == "no-cache"
            assert_secured(response)
            etag = response.headers["etag"]
            again = await http.get(path, headers={"if-none-match": etag})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
            assert_secured(again)
        for path in [
            "/static/nope.js",
            "/static/%2e%2e/routes.py",
            "/static/.hidden.js",
            "/static/js",
            "/static/index",
        ]:
            response = await http.get(path)
            assert response.status_code == 404, path
            assert_secured(response)


async def test_other_routes_are_not_shadowed(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        gateway = await http.get("/api/v1/gateway")
        assert gateway.json()["url"].endswith("/gateway")
        assert (await http.get("/healthz")).json()["status"] == "ok"
        assert (await http.get("/readyz")).status_code == 200
        assert "miaou" in (await http.get("/metrics")).text
        assert (await http.get("/api/v1/users/@me")).json()["code"] == "missing_token"
        assert (await http.get("/api/v1/tracks")).json() == []  # the API's, not the page's
        assert (
            (await http.get("/api/v1/nothing"))
            .headers["content-type"]
            .startswith("application/json")
        )
        paths = (await http.get("/api/v1/openapi.json")).json()["paths"]
        assert not [
            p for p in paths if not p.startswith("/api/") and p not in ("/healthz", "/readyz")
        ]
