"""`Publisher`: the one writer task that publishes everything a node's bus sends, in order.

Pipelined: consecutive messages for one channel go as one `PUBLISH`
(`["n", [message, ...]]`), so under load Redis and the receiving node handle one pub/sub
message per burst. A batch whose pipeline fails (Redis restarting, a connection cut) is
kept and published again, in the same order and ahead of what was sent after it, with the
reconnect backoff, as long as its messages are younger than `keys.PUBLISH_KEEP_S`; older
ones are dropped, logged `bus: ... not published` as before. A retried pipeline may have
run once already: a numbered message published twice is dropped by the receiving line
(`reorder.py`), a relayed frame may be heard twice.

A numbered message (`["s", principal, payloads, seq]`) for another node's connection is
also kept in the principal's short list (`keys.fill`: `RPUSH`, `LTRIM` to `FILL_MAX`,
`EXPIRE` `FILL_TTL_S`, in the same pipeline, before the `PUBLISH`), so a node whose
subscription was lost while it was published reads it when it subscribes again
(`RedisBus._fill`).

Memory: at most `PUBLISH_QUEUE_MAX` messages wait; beyond, relayed frames (`"m"`, which a
second late is worth little) are dropped, counted and logged once per outage; beyond twice
that, every message is (numbered ones come from routing transactions, which need Redis, so
an outage makes few).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from . import keys

log = logging.getLogger(__name__)

WRITE_BATCH = 512  # messages per pipeline: bounded latency, few round trips under load

_encode = msgspec.msgpack.encode

Item = tuple[bytes, list[Any], float]  # channel, message, when it was sent (monotonic)


class Publisher:
    def __init__(self, redis: Redis, prefix: str, broadcast_channel: bytes) -> None:
        self._redis = redis
        self._prefix = prefix
        self._all = broadcast_channel
        self._out: asyncio.Queue[Item] = asyncio.Queue()
        self.dropped = 0  # messages never published (figures for tests)
        self.failures = 0  # pipelines that failed
        self._full = False  # the cap was reached in this outage (logged once)

    def put(self, channel: bytes, message: list[Any]) -> None:
        size = self._out.qsize()
        if size >= keys.PUBLISH_QUEUE_MAX and (
                message[0] == "m" or size >= 2 * keys.PUBLISH_QUEUE_MAX):
            self.dropped += 1
            if not self._full:
                self._full = True
                log.warning("bus: %d message(s) wait to be published: dropping new ones", size)
            return
        self._out.put_nowait((channel, message, time.monotonic()))

    def waiting(self) -> int:
        return self._out.qsize()

    async def run(self, closing: Callable[[], bool]) -> None:
        delay = keys.RECONNECT_MIN_S
        batch: list[Item] = []
        while not closing():
            if not batch:
                batch = [await self._out.get()]
            while len(batch) < WRITE_BATCH and not self._out.empty():
                batch.append(self._out.get_nowait())
            try:
                try:
                    await self._publish(batch)
                except RedisConnectionError:
                    await self._publish(batch)  # a pooled connection Redis had dropped
                if delay > keys.RECONNECT_MIN_S:
                    log.warning("bus: publishing again after losing Redis")
                batch = []
                delay = keys.RECONNECT_MIN_S
                self._full = False
            except (RedisError, OSError) as exc:
                self.failures += 1
                batch = self._keep(batch, str(exc))
                await asyncio.sleep(delay)
                delay = min(delay * 2, keys.RECONNECT_MAX_S)
            except Exception:
                log.exception("bus: %d message(s) not published", len(batch))
                self.dropped += len(batch)
                batch = []
                await asyncio.sleep(delay)
                delay = min(delay * 2, keys.RECONNECT_MAX_S)

    def _keep(self, batch: list[Item], why: str) -> list[Item]:
        """What of a failed batch to publish again: the messages young enough."""
        since = time.monotonic() - keys.PUBLISH_KEEP_S
        kept = [item for item in batch if item[2] > since]
        if len(kept) < len(batch):
            self.dropped += len(batch) - len(kept)
            log.warning("bus: %d message(s) not published (%s)", len(batch) - len(kept), why)
        if kept:
            log.warning("bus: %d message(s) not published yet (%s): trying again",
                        len(kept), why)
        return kept

    async def _publish(self, batch: list[Item]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            numbered: dict[str, list[bytes]] = {}
            for channel, message, _ in batch:
                if message[0] == "s" and channel != self._all:
                    numbered.setdefault(message[1], []).append(
                        _encode([message[3], message[2]]))
            for principal, entries in numbered.items():
                key = keys.fill(self._prefix, principal)
                pipe.rpush(key, *entries)
                pipe.ltrim(key, -keys.FILL_MAX, -1)
                pipe.expire(key, keys.FILL_TTL_S)
            start = 0
            for end in range(1, len(batch) + 1):
                if end < len(batch) and batch[end][0] == batch[start][0]:
                    continue
                run = [message for _, message, _ in batch[start:end]]
                pipe.publish(batch[start][0], _encode(run[0] if len(run) == 1 else ["n", run]))
                start = end
            await pipe.execute()
