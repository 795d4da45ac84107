"""`/healthz` says `starting` (503) until what the configuration promises is there."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from server.health import READINESS
from server.metrics import METRICS
from tests.cluster.fixtures import REDIS_URL
from tests.helpers import eventually
from tests.recording.test_recording_protocol import RECORDING, recorder
from tests.test_crash_recovery import free_port


async def health(client: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.get("/healthz")
    return resp.status, await resp.json()


async def test_recording_server_is_starting_until_a_recorder_joins(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    assert await health(client) == (503, {"status": "starting", "waiting_for": ["recorder"]})
    assert await health(client) == (503, {"status": "starting", "waiting_for": ["recorder"]})
    rec = await recorder(client, "rec1")

    async def ready() -> bool:  # the recorder joins the pool just after its welcome
        return await health(client) == (200, {"status": "ok"})

    await eventually(ready)
    await rec.close()  # a recorder lost later does not make the server "starting" again
    assert (await health(client))[0] == 200


async def test_server_without_recording_is_ready_at_once(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app())
    assert await health(client) == (200, {"status": "ok"})


async def test_redis_must_answer(aiohttp_client: Any,
                                 make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app())
    app = client.server.app
    app[READINESS].missing.add("redis")  # as built with [routing] backend = "redis"
    dead = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    live = Redis.from_url(REDIS_URL)
    try:
        app[METRICS].redis_ping = dead.ping
        assert await health(client) == (503, {"status": "starting", "waiting_for": ["redis"]})
        app[METRICS].redis_ping = live.ping
        assert await health(client) == (200, {"status": "ok"})
    finally:
        await dead.aclose()
        await live.aclose()
