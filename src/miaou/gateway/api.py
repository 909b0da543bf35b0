"""``GET /api/v1/gateway``: where clients open their WebSocket (same host and port)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get

from miaou.gateway.protocol import PATH


class GatewayUrl(msgspec.Struct):
    url: str


@get("/api/v1/gateway", tags=["gateway"], summary="The gateway's WebSocket URL", security=[])
async def gateway_url(request: Request[Any, Any, Any]) -> GatewayUrl:
    scheme = "wss" if request.url.scheme == "https" else "ws"
    return GatewayUrl(url=f"{scheme}://{request.url.netloc}{PATH}")


routes = [gateway_url]
