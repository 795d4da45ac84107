"""A Redis client whose commands are waits of the step being traced (`server.steptrace`):
a command by its name, a pipeline as one wait. The router names its scripts itself (the
command inside, EVALSHA, is then part of that wait)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from server.steptrace import waiting


class TracedRedis(Redis):
    async def execute_command(self, *args: Any, **options: Any) -> Any:
        with waiting(f"redis {args[0]}"):
            return await super().execute_command(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        return TracedPipeline(self.connection_pool, self.response_callbacks, transaction,
                              shard_hint)


class TracedPipeline(Pipeline):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        with waiting("redis pipeline"):
            return await super().execute(raise_on_error)
