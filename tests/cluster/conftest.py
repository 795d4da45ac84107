"""Fixtures of the cluster tests: a real Redis, a fresh key prefix per test.

A missing Redis fails the test (it must be proven on the real thing in CI).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tests.cluster.losing import lossy_desk, lossy_recorded_desk, proxy  # noqa: F401  (fixtures)
from tests.cluster.procs import Cluster
from tests.cluster.two_desks import dead, survivor  # noqa: F401  (fixtures)

REDIS_URL = "redis://127.0.0.1:6379/0"


async def flush_prefix(redis: Redis, prefix: str) -> None:
    """Delete every key of one test's prefix (never the whole database: it is shared)."""
    batch: list[bytes] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        batch.append(key)
        if len(batch) >= 500:
            await redis.delete(*batch)
            batch.clear()
    if batch:
        await redis.delete(*batch)


@pytest.fixture
def key_prefix() -> str:
    return f"vwtest{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis(key_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await client.ping()
    except (OSError, RedisError) as exc:
        await client.aclose()
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc!r}")
    try:
        yield client
    finally:
        await flush_prefix(client, key_prefix)
        await client.aclose()


@pytest.fixture
def pg_url(fresh_pg_url: str) -> str:
    """A new PostgreSQL database for one test, shared by its nodes, dropped afterwards."""
    return fresh_pg_url


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, key_prefix: str,
                  redis: Redis) -> AsyncIterator[Cluster]:
    """Nodes started by the test, all stopped afterwards (Redis keys flushed by `redis`)."""
    del redis
    made = Cluster(tmp_path, pg_url, key_prefix)
    try:
        yield made
    finally:
        await made.close()
