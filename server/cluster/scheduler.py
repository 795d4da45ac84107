"""`RedisScheduler`: timers in a Redis sorted set, fired exactly once cluster-wide.

Every node polls; a due timer is claimed by one script that removes it, so
exactly one node fires it, and a timer outlives the node that set it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from signaling.backend import TimerHandler

from . import keys

log = logging.getLogger(__name__)

CLAIM = """
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
local out = {}
for _, key in ipairs(due) do
  redis.call("ZREM", KEYS[1], key)
  out[#out + 1] = key
  out[#out + 1] = redis.call("HGET", KEYS[2], key) or ""
  redis.call("HDEL", KEYS[2], key)
end
return out
"""


class RedisScheduler:
    def __init__(self, redis: Redis, prefix: str, clock: Any = time.time) -> None:
        self._redis = redis
        self._keys = [keys.timers(prefix), keys.timer_payloads(prefix)]
        self._claim = redis.register_script(CLAIM)
        self._clock = clock
        self._handler: TimerHandler | None = None
        self._poller: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False  # redis-py may swallow a cancel mid-command: the loop checks this

    def set_handler(self, handler: TimerHandler) -> None:
        self._handler = handler

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def schedule(self, key: str, delay_s: float, kind: str, payload: dict[str, Any]) -> None:
        data = json.dumps({"kind": kind, "payload": payload})
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._keys[0], {key: self._clock() + max(0.0, delay_s)})
            pipe.hset(self._keys[1], key, data)
            await pipe.execute()

    async def cancel(self, key: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._keys[0], key)
            pipe.hdel(self._keys[1], key)
            await pipe.execute()

    async def pending(self) -> set[str]:
        return {str(key) for key in await self._redis.zrange(self._keys[0], 0, -1)}

    async def _poll(self) -> None:
        delay = keys.RECONNECT_MIN_S
        while not self._closing:
            try:
                flat = await self._claim(keys=self._keys,
                                         args=[repr(self._clock()), keys.TIMER_CLAIM_BATCH])
            except (RedisError, OSError) as exc:
                log.warning("timer poll failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, keys.RECONNECT_MAX_S)
                continue
            delay = keys.RECONNECT_MIN_S
            for i in range(0, len(flat), 2):
                self._fire(flat[i], flat[i + 1])
            if len(flat) < 2 * keys.TIMER_CLAIM_BATCH:
                await asyncio.sleep(keys.TIMER_POLL_S)

    def _fire(self, key: str, data: str) -> None:
        if self._handler is None or not data:
            return
        timer = json.loads(data)
        task = asyncio.get_running_loop().create_task(
            _call(self._handler, timer["kind"], timer["payload"]))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("timer handler failed", exc_info=task.exception())

    async def close(self) -> None:
        """Stop claiming; timers not yet due stay in Redis for the other nodes."""
        self._closing = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


async def _call(handler: TimerHandler, kind: str, payload: dict[str, Any]) -> None:
    await handler(kind, payload)
