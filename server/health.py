"""Readiness that tells the truth: `starting` (HTTP 503) until what the config promises is there.

With recording enabled, a server is ready once a recorder has joined (before that every
call would go unrecorded); with Redis routing, once Redis answers. Ready is latched per
part: a recorder lost later is a recording matter (the log says so), not a restart. A
Redis that stops answering later turns the status `degraded` (`server.cluster.node`).
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from server.metrics import METRICS
from server.recording.embedded import RECORDING

PING_TIMEOUT_S: Final = 2.0


class Readiness:
    """What is still missing; parts leave `missing` once and never come back."""

    def __init__(self, recording: bool, redis: bool) -> None:
        self.missing: set[str] = set()
        if recording:
            self.missing.add("recorder")
        if redis:
            self.missing.add("redis")

    async def check(self, app: web.Application) -> set[str]:
        if "recorder" in self.missing:
            setup = app[RECORDING].setup
            if setup is None or await setup.pool.recorders():
                self.missing.discard("recorder")
        if "redis" in self.missing:
            ping = app[METRICS].redis_ping
            try:
                if ping is not None:
                    await asyncio.wait_for(ping(), PING_TIMEOUT_S)
                    self.missing.discard("redis")
            except Exception:
                pass
        return set(self.missing)


READINESS = web.AppKey("readiness", Readiness)
