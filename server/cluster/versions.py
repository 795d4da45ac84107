"""Which protocol between nodes each live node speaks, so that a cluster of mixed versions
is known at once instead of from messages lost between them.

Nodes pass each other pub/sub messages (`bus.py`): batched (`"n"`), "call changed"
notices (`"i"`) and unnumbered in-line events (`["e", principal, payload, counter]`). A
node that does not know one of these drops it, so nodes of different protocols must not
run together (docs/cluster.md, "Relaying between nodes"). Each node writes its level
with every heartbeat (`keys.protocols`); a node from before the levels writes none
(level 0). `vwin serve` refuses to start beside a live node of another level
(`preflight.check_redis`), a running node logs an error for each one it sees join
(`ClusterNode.sweep`), and `vwin doctor` reports them.
"""

from __future__ import annotations

from redis.asyncio import Redis

from . import keys

# The protocol this code speaks; raise it with any change of the messages between nodes
# that an older node cannot read. 1: batched messages, "call changed" notices and
# unnumbered in-line events (2026-12-06).
PROTOCOL = 1


async def live_levels(redis: Redis, prefix: str) -> dict[str, tuple[str, int]]:
    """instance -> (its node id, its protocol; 0 = a node from before the levels), for every
    registered instance whose heartbeat is alive."""
    registry = await redis.hgetall(keys.nodes(prefix))
    if not registry:
        return {}
    instances = [_text(i) for i in registry]
    async with redis.pipeline(transaction=False) as pipe:
        for instance in instances:
            pipe.exists(keys.heartbeat(prefix, instance))
        pipe.hmget(keys.protocols(prefix), instances)
        *alive, levels = await pipe.execute()
    node_ids = {_text(i): _text(n) for i, n in registry.items()}
    return {instance: (node_ids[instance], int(level or 0))
            for instance, up, level in zip(instances, alive, levels, strict=True) if up}


def others(levels: dict[str, tuple[str, int]], node_id: str) -> dict[str, tuple[str, int]]:
    """The live instances of other nodes (not an earlier instance of `node_id`, being
    replaced) that speak another protocol than this one."""
    return {instance: (node, level) for instance, (node, level) in levels.items()
            if node != node_id and level != PROTOCOL}


def describe(mixed: dict[str, tuple[str, int]]) -> str:
    return ", ".join(f"{node} ({instance}) at protocol {level}"
                     + (" (an older version, without levels)" if level == 0 else "")
                     for instance, (node, level) in sorted(mixed.items()))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
