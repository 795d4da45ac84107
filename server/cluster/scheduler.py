"""`RedisScheduler`: timers in Redis, fired once cluster-wide, surviving any node's death.

Every node polls. A due timer is claimed by one script, so by one node: it moves
from the pending timers to the leases, under a claim that names the node, with a
deadline `TIMER_LEASE_S` ahead. The handler's completion acknowledges the claim
(deletes it); while the handler runs, its node extends the lease
`TIMER_RENEWALS_PER_LEASE` times per lease. A lease that runs out belongs to a
node that died or hung between claim and completion: the next poll of any node
claims the timer again and fires it. So a timer outlives the node that set it and
the node that claimed it. A handler runs twice only after such a crash (or a hang
longer than the lease), and a second run does nothing twice: each handler starts
with one atomic transition that only one run can make (`CallSteps.on_timer`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from server.steptrace import waiting
from signaling.backend import TimerHandler
from signaling.errors import FENCED, Refused
from signaling.timers import Timer

from . import keys

log = logging.getLogger(__name__)

# KEYS: timers, payloads, leases, claims, the owner's fence (keys.py): a fenced owner
# claims and renews nothing (its leases run out; the others run its timers). ARGV: now,
# limit, lease deadline, owner (node instance), claims this owner named so far, then the
# claims it still runs.
# First extends those leases (XX: a lease another node took over stays theirs); then
# claims expired leases (their node died or hung), then due timers, `limit` in all:
# each gets a new claim `key SEP owner SEP n` leased until the deadline. An expired
# lease whose key was scheduled again meanwhile is dropped, not run: the newer timer
# supersedes it, as scheduling a key again replaces it (e.g. a ring timeout whose
# first run had offered the call again). Returns claim, JSON, claim, JSON...
CLAIM = r"""
local now, limit, deadline, owner = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
if redis.call("EXISTS", KEYS[5]) == 1 then return {} end
local n = tonumber(ARGV[5])
for i = 6, #ARGV do redis.call("ZADD", KEYS[3], "XX", deadline, ARGV[i]) end
local out = {}
local function lease(key, data)
  n = n + 1
  local claim = key .. "\31" .. owner .. "\31" .. n
  redis.call("ZADD", KEYS[3], deadline, claim)
  redis.call("HSET", KEYS[4], claim, data)
  out[#out + 1] = claim
  out[#out + 1] = data
end
for _, old in ipairs(redis.call("ZRANGEBYSCORE", KEYS[3], "-inf", now, "LIMIT", 0, limit)) do
  local data = redis.call("HGET", KEYS[4], old) or ""
  local key = string.match(old, "^[^\31]*")
  redis.call("ZREM", KEYS[3], old)
  redis.call("HDEL", KEYS[4], old)
  if not redis.call("ZSCORE", KEYS[1], key) then lease(key, data) end
end
local left = limit - #out / 2
if left > 0 then
  for _, key in ipairs(redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, left)) do
    local data = redis.call("HGET", KEYS[2], key) or ""
    redis.call("ZREM", KEYS[1], key)
    redis.call("HDEL", KEYS[2], key)
    lease(key, data)
  end
end
return out
"""


class RedisScheduler:
    def __init__(self, redis: Redis, prefix: str, clock: Any = time.time, *,
                 owner: str | None = None, lease_s: float = keys.TIMER_LEASE_S,
                 handler: TimerHandler | None = None) -> None:
        """`handler`: what a claimed timer runs (None: claimed, never run nor acknowledged,
        as by a node that died)."""
        self._redis = redis
        self._owner = owner or f"scheduler.{secrets.token_hex(4)}"
        self._keys = [keys.timers(prefix), keys.timer_payloads(prefix),
                      keys.timer_leases(prefix), keys.timer_claims(prefix),
                      keys.fence(prefix, self._owner)]
        self._claim = redis.register_script(CLAIM)
        self._clock = clock
        self._lease_s = lease_s
        self._named = 0  # claims this owner named so far: the `n` that makes each unique
        self._renew_at = 0.0
        self._handler = handler
        self._poller: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}  # claim -> its handler
        self._closing = False  # redis-py may swallow a cancel mid-command: the loop checks this

    def start(self) -> None:
        self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def change(self, cancel: Sequence[str], schedule: Sequence[Timer]) -> None:
        """One MULTI: a step's timers cancelled, then set, in one round trip (a timer
        already claimed runs: its handler finds nothing to do)."""
        if not cancel and not schedule:
            return
        with waiting("redis timers" if len(cancel) + len(schedule) > 1 else
                     "redis timer cancel" if cancel else "redis timer set"):
            async with self._redis.pipeline(transaction=True) as pipe:
                for key in cancel:
                    pipe.zrem(self._keys[0], key)
                    pipe.hdel(self._keys[1], key)
                now = self._clock()
                for timer in schedule:
                    pipe.zadd(self._keys[0], {timer.key: now + max(0.0, timer.delay_s)})
                    pipe.hset(self._keys[1], timer.key, json.dumps(
                        {"kind": timer.kind, "payload": timer.payload}))
                await pipe.execute()

    async def pending(self) -> set[str]:
        return {str(key) for key in await self._redis.zrange(self._keys[0], 0, -1)}

    async def poll(self) -> int:
        """Claim what is due (and extend running leases when due), start its handlers;
        returns how many were claimed."""
        now = self._clock()
        renew = list(self._running) if self._running and now >= self._renew_at else []
        named, self._named = self._named, self._named + keys.TIMER_CLAIM_BATCH
        flat = await self._claim(keys=self._keys, args=[
            repr(now), keys.TIMER_CLAIM_BATCH, repr(now + self._lease_s), self._owner, named,
            *renew])
        if renew:
            self._renew_at = now + self._lease_s / keys.TIMER_RENEWALS_PER_LEASE
        for i in range(0, len(flat), 2):
            self._fire(str(flat[i]), str(flat[i + 1]))
        return len(flat) // 2

    async def _poll(self) -> None:
        delay = keys.RECONNECT_MIN_S
        while not self._closing:
            try:
                claimed = await self.poll()
            except (RedisError, OSError) as exc:
                log.warning("timer poll failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, keys.RECONNECT_MAX_S)
                continue
            delay = keys.RECONNECT_MIN_S
            if claimed < keys.TIMER_CLAIM_BATCH:
                await asyncio.sleep(keys.TIMER_POLL_S)

    def _fire(self, claim: str, data: str) -> None:
        task = asyncio.get_running_loop().create_task(self._run(claim, data))
        self._running[claim] = task
        task.add_done_callback(lambda _: self._running.pop(claim, None))

    async def _run(self, claim: str, data: str) -> None:
        """Run the handler, then acknowledge; not after a Redis or database failure (the
        handler may have stopped halfway: the lease runs out and a poll runs it again)."""
        if self._handler is None:
            return  # not acknowledged: another node runs it when the lease ends
        if data:
            timer = json.loads(data)
            try:
                await self._handler(timer["kind"], timer["payload"])
            except (RedisError, OSError, DBAPIError) as exc:
                log.warning("timer %r failed (%s); it runs again when its lease ends",
                            claim, exc)
                return
            except Refused as exc:
                if exc.code == FENCED:  # taken for dead: a survivor runs it when the lease ends
                    return
                log.exception("timer handler failed")
            except Exception:
                log.exception("timer handler failed")
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zrem(self._keys[2], claim)
                pipe.hdel(self._keys[3], claim)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("timer %r done but not acknowledged (%s): it runs again (to no "
                        "effect) when its lease ends", claim, exc)

    async def close(self) -> None:
        """Stop claiming and let running handlers finish (and acknowledge); timers not yet
        due stay in Redis for the other nodes."""
        self._closing = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        if self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
