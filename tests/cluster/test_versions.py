"""Nodes of different protocols are known at once (server/cluster/versions.py): a node
from before the levels (or of another level) alive on the cluster stops `vwin serve`
with one line, is reported by `vwin doctor`, and a running node logs an error when one
joins. Real Redis, a fresh key prefix."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from server import doctor, preflight
from server.cluster import keys, versions
from server.cluster.node import ClusterNode
from tests.cluster.conftest import REDIS_URL
from tests.helpers import make_settings


async def old_node(redis: Redis, prefix: str, instance: str = "old.1234") -> None:
    """A live instance as a node from before the levels registers it: no protocol."""
    await redis.hset(keys.nodes(prefix), instance, "old")
    await redis.set(keys.heartbeat(prefix, instance), "old", ex=60)


class Quiet:
    async def dead(self, instance: str, principals: set[str]) -> None: ...
    def reaped(self) -> None: ...
    def lost(self, instances: set[str]) -> None: ...
    async def recovered(self) -> None: ...


@pytest.fixture
async def node(redis: Redis, key_prefix: str) -> AsyncIterator[ClusterNode]:
    made = ClusterNode(redis, key_prefix, "new", {}, Quiet())
    await made.start()
    yield made
    await made.close()


async def test_a_node_says_its_protocol_and_an_old_one_is_level_0(
        node: ClusterNode, redis: Redis, key_prefix: str) -> None:
    await old_node(redis, key_prefix)
    levels = await versions.live_levels(redis, key_prefix)
    assert levels == {node.instance: ("new", versions.PROTOCOL), "old.1234": ("old", 0)}
    assert versions.others(levels, "new") == {"old.1234": ("old", 0)}
    assert versions.others(levels, "old") == {}  # an earlier instance of the same node: not
    # another version beside it (it is being replaced)
    await redis.delete(keys.heartbeat(key_prefix, "old.1234"))  # it stopped
    assert versions.others(await versions.live_levels(redis, key_prefix), "new") == {}


async def test_serve_refuses_to_start_beside_another_version(redis: Redis,
                                                             key_prefix: str) -> None:
    settings = make_settings("sqlite+aiosqlite://", "redis",
                             routing={"redis_url": REDIS_URL, "key_prefix": key_prefix})
    await preflight.check_redis(settings)  # nobody else: fine
    await old_node(redis, key_prefix)
    with pytest.raises(preflight.StartupError) as refused:
        await preflight.check_redis(settings)
    assert "old (old.1234) at protocol 0" in str(refused.value)
    assert "stop every node and start them on one version" in str(refused.value)


async def test_doctor_reports_mixed_versions(node: ClusterNode, redis: Redis,
                                             key_prefix: str) -> None:
    settings = make_settings("sqlite+aiosqlite://", "redis",
                             routing={"redis_url": REDIS_URL, "key_prefix": key_prefix})
    status, detail = await doctor.check_redis(settings)
    assert status == doctor.OK and "1 node(s) alive at protocol" in detail
    await old_node(redis, key_prefix)
    status, detail = await doctor.check_redis(settings)
    assert status == doctor.FAIL and "old (old.1234) at protocol 0" in detail
    del node


async def test_a_running_node_logs_an_older_one_joining_once(
        node: ClusterNode, redis: Redis, key_prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    await old_node(redis, key_prefix)
    with caplog.at_level(logging.ERROR, logger="server.cluster.node"):
        for _ in range(200):  # the first sweep once this node is settled (about 4 s)
            if "runs beside" in caplog.text:
                break
            await asyncio.sleep(0.05)
        assert "runs beside old (old.1234) at protocol 0" in caplog.text
        await node.sweep()  # again: not reported twice
    assert caplog.text.count("runs beside") == 1
