"""Rate limits as a client sees them: 429 + Retry-After, X-RateLimit-*, isolation."""

from __future__ import annotations

import os
import secrets
import time

import httpx
import pytest

from miaou.sdk import ApiError, Client, RateLimitedError

PASSWORD = "correct horse battery"


async def test_a_flood_of_logins_gets_429_with_retry_after(start_node) -> None:
    node = await start_node(ratelimit={"auth_per_ip": "5/60"})
    statuses = []
    async with httpx.AsyncClient(base_url=node.url) as http:
        for _ in range(8):
            response = await http.post(
                "/api/v1/auth/login", json={"username": "nobody", "password": PASSWORD}
            )
            statuses.append(response.status_code)
    assert statuses == [401] * 5 + [429] * 3
    assert response.json()["code"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 12  # one token refills every 60/5 = 12 s
    assert response.headers["x-ratelimit-limit"] == "5"
    assert response.headers["x-ratelimit-remaining"] == "0"
    assert float(response.headers["x-ratelimit-reset-after"]) > 0


async def test_rate_limit_headers_count_down(node) -> None:
    async with httpx.AsyncClient(base_url=node.url) as http:
        first = await http.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
        second = await http.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert int(first.headers["x-ratelimit-remaining"]) == 9
    assert int(second.headers["x-ratelimit-remaining"]) == 8
    reset = float(second.headers["x-ratelimit-reset"])
    assert time.time() < reset < time.time() + 61


async def test_one_address_flooding_does_not_lock_out_another(start_node) -> None:
    node = await start_node(ratelimit={"auth_per_ip": "3/60"}, trust_proxy=True)
    async with httpx.AsyncClient(base_url=node.url) as http:
        reg = await http.post(
            "/api/v1/auth/register",
            json={"username": "victim", "password": PASSWORD},
            headers={"x-forwarded-for": "203.0.113.9"},
        )
        assert reg.status_code == 201
        for _ in range(5):
            flood = await http.post(
                "/api/v1/auth/login",
                json={"username": "victim", "password": "guess1234"},
                headers={"x-forwarded-for": "198.51.100.7"},
            )
        assert flood.status_code == 429
        real = await http.post(
            "/api/v1/auth/login",
            json={"username": "victim", "password": PASSWORD},
            headers={"x-forwarded-for": "203.0.113.9"},
        )
    assert real.status_code == 200


async def test_per_user_limit_applies_to_the_user_only(start_node) -> None:
    node = await start_node(ratelimit={"api_per_user": "3/60"})
    async with (
        Client(node.url, rate_limit_retries=0) as busy,
        Client(node.url, rate_limit_retries=0) as calm,
    ):
        await busy.register("busy", PASSWORD)
        await calm.register("calm", PASSWORD)
        for _ in range(3):
            await busy.me()
        with pytest.raises(RateLimitedError) as limited:
            await busy.me()
        assert limited.value.status == 429
        assert limited.value.headers["x-ratelimit-limit"] == "3"
        assert (await calm.me()).username == "calm"  # same IP, other user


async def test_sdk_waits_for_retry_after_and_succeeds(start_node) -> None:
    node = await start_node(ratelimit={"api_per_user": "1/1"})
    async with Client(node.url, rate_limit_retries=2) as client:
        await client.register("patient", PASSWORD)
        await client.me()
        started = time.monotonic()
        assert (await client.me()).username == "patient"
        assert time.monotonic() - started >= 0.9


async def test_health_and_metrics_are_not_limited(start_node) -> None:
    node = await start_node(ratelimit={"api_per_ip": "2/60"})
    async with httpx.AsyncClient(base_url=node.url) as http:
        codes = {
            (await http.get(path)).status_code for path in ["/healthz", "/metrics", "/readyz"] * 3
        }
    assert codes == {200}


async def test_disabled_rate_limits(start_node) -> None:
    node = await start_node(ratelimit={"enabled": False, "auth_per_ip": "1/60"})
    async with httpx.AsyncClient(base_url=node.url) as http:
        codes = [
            (
                await http.post("/api/v1/auth/login", json={"username": "a", "password": "b"})
            ).status_code
            for _ in range(3)
        ]
    assert codes == [401, 401, 401]


REDIS_URL = os.environ.get("MIAOU_TEST_REDIS_URL", "")


@pytest.mark.skipif(not REDIS_URL, reason="needs MIAOU_TEST_REDIS_URL (set in CI)")
async def test_nodes_sharing_redis_share_limits(start_node) -> None:
    shared = {
        "redis_url": REDIS_URL,
        "redis_namespace": f"test-{secrets.token_hex(6)}",
        "ratelimit": {"auth_per_ip": "4/60"},
    }
    a = await start_node(**shared)
    b = await start_node(**shared)
    codes = []
    for url in (a.url, b.url, a.url, b.url, a.url, b.url):
        async with httpx.AsyncClient(base_url=url) as http:
            codes.append(
                (
                    await http.post("/api/v1/auth/login", json={"username": "n", "password": "p"})
                ).status_code
            )
    assert codes == [401, 401, 401, 401, 429, 429]


async def test_sdk_raises_api_error_with_fields(node) -> None:
    async with Client(node.url) as client:
        with pytest.raises(ApiError) as error:
            await client.register("x", PASSWORD)
    assert error.value.errors["username"]
