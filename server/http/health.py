"""`GET /healthz`: readiness (`server.health`) and the cluster node's health."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from server import keys
from server.health import READINESS

STARTING: Final = "starting"


async def healthz(request: web.Request) -> web.Response:
    """`{"status": "ok" | "degraded" | "starting", ...}`; 503 while starting."""
    app = request.app
    health = app[keys.HEALTH]
    missing = await app[READINESS].check(app)
    body: dict[str, object] = {k: v for k, v in health.items() if k != "status"}
    if missing:
        body = {"status": STARTING, "waiting_for": sorted(missing), **body}
        return web.json_response(body, status=503)
    return web.json_response({"status": health.get("status", "ok"), **body})
