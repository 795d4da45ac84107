"""Redis fixtures shared by the whole suite (app tests run on the Redis backend too)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis as redis_sync
from redis.exceptions import RedisError

REDIS_URL = "redis://127.0.0.1:6379/0"


def flush_prefix_sync(prefix: str) -> None:
    """Delete one test's keys (never the whole database: it is shared)."""
    client = redis_sync.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i:i + 500])
    finally:
        client.close()


@pytest.fixture(scope="session")
def used_key_prefixes() -> Iterator[list[str]]:
    """Key prefixes to delete at the end of the run.

    Not at the end of each test: the test's own servers may still be shutting down
    then (pytest may tear `aiohttp_client` down after the prefix), and a node that
    found its keys gone would take itself for dead."""
    prefixes: list[str] = []
    yield prefixes
    for prefix in prefixes:
        flush_prefix_sync(prefix)


@pytest.fixture
def redis_key_prefix(used_key_prefixes: list[str]) -> str:
    """A key prefix of this test alone; fails (not skips) when Redis is unreachable."""
    prefix = f"vwtest{uuid.uuid4().hex[:12]}"
    used_key_prefixes.append(prefix)
    client = redis_sync.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except (OSError, RedisError) as exc:
        pytest.fail(f"Redis at {REDIS_URL} is unreachable: {exc!r}")
    finally:
        client.close()
    return prefix
