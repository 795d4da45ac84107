"""`RedisScheduler.close()` returns promptly, even when redis-py swallows the cancel.

redis-py 8.1 can swallow the cancellation of a task waiting on a command, so a
poll loop stopped by `cancel()` alone goes on polling and close() never returns
(about one close in ten hung before the loop checked a stop flag).
"""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from server.cluster.backends import connect_redis
from server.cluster.scheduler import RedisScheduler
from signaling.timers import Timer
from tests.cluster.conftest import REDIS_URL

CYCLES = 60  # at ~8 % hangs per close without the fix, 60 closes catch it almost surely


async def test_close_returns_while_polling(redis: Redis, key_prefix: str) -> None:
    client = connect_redis(REDIS_URL, f"{key_prefix}:close")
    try:
        for i in range(CYCLES):
            scheduler = RedisScheduler(client, key_prefix)
            scheduler.start()
            await asyncio.sleep(0.001 * (i % 40))  # close at every point of a poll
            await asyncio.wait_for(scheduler.close(), 5)
        later = RedisScheduler(client, key_prefix)
        await later.change([], [Timer(
            key="ring:c1", delay_s=60, kind="ring", payload={"call_id": "c1"})])
        later.start()
        await asyncio.wait_for(later.close(), 5)
        assert await RedisScheduler(client, key_prefix).pending() == {"ring:c1"}
    finally:
        await client.aclose()
