"""Cluster benchmarks (Redis backend): assignment time, and calls routed per second.

    python -m bench.cluster assign   # 10,000 waiting calls, 1,000 specialists
    python -m bench.cluster rate     # calls routed per second with 1, 2 and 4 router processes
    python -m bench.cluster relay [--pairs 100] [--seconds 5] [--window 8]
                                     # relay through two nodes beside one node and bare aiohttp

Prints figures; needs Redis at 127.0.0.1:6379 (keys under a throw-away prefix, deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import redis as redis_sync
from redis.asyncio import Redis

from bench import relay as relay_bench
from bench.bare_relay import serve as serve_bare
from bench.common import ROOT, VwinServer, free_port, raise_fd_limit, table, workdir
from bench.provision import provision
from server.cluster.router import RedisRouter
from signaling.model import Agent, AgentState, Call, QueueConfig

REDIS_URL = "redis://127.0.0.1:6379/0"
QUEUES = [QueueConfig(id="tax", name="Tax"), QueueConfig(id="general", name="General")]


def flush(prefix: str) -> None:
    client = redis_sync.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=5000))
    for i in range(0, len(keys), 1000):
        client.delete(*keys[i:i + 1000])
    client.close()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def assign(calls: int = 10_000, agents: int = 1_000, rounds: int = 2_000) -> None:
    """Steady state: every specialist busy, `calls` waiting; one frees up -> one assignment."""
    prefix = f"vwbench{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    router = RedisRouter(redis, prefix, QUEUES)
    await router.start()
    now = 1_000_000.0
    try:
        for i in range(agents):
            await router.agent_join(Agent(id=f"a{i}", name=f"A{i}",
                                          skills={"tax": 1 + i % 3, "general": 2}), now)
        for i in range(calls + agents):
            now += 0.001
            await router.enqueue(Call(id=f"c{i}", session_id=f"s{i}", queue="tax",
                                      terminal_id=f"t{i}", enqueued_at=now))
        for i in range(agents):
            await router.set_status(f"a{i}", AgentState.AVAILABLE, now)
        offers = await router.dispatch(now)
        for offer in offers:
            await router.accept(offer.call_id, offer.agent_id, now)
        connected = [o.call_id for o in offers]
        dispatch_ms: list[float] = []
        total_ms: list[float] = []
        for i in range(rounds):
            now += 0.01
            ended = await router.hangup(connected[i % len(connected)], now)
            assert ended is not None
            await router.wrapup_done(ended.agents[0], now)
            start = time.perf_counter()
            (offer,) = await router.dispatch(now)
            middle = time.perf_counter()
            await router.accept(offer.call_id, offer.agent_id, now)
            end = time.perf_counter()
            connected[i % len(connected)] = offer.call_id
            dispatch_ms.append((middle - start) * 1000)
            total_ms.append((end - start) * 1000)
            now += 0.001
            await router.enqueue(Call(id=f"n{i}", session_id=f"ns{i}", queue="tax",
                                      terminal_id=f"nt{i}", enqueued_at=now))
        snap = await router.snapshot("tax", now)
        print(f"assignment with Redis: {snap.waiting} waiting calls, {agents} specialists, "
              f"{rounds} rounds")
        print(f"  dispatch (pick + ring):  p50 {statistics.median(dispatch_ms):.3f} ms  "
              f"p99 {pct(dispatch_ms, 0.99):.3f} ms  (goal p99 < 5 ms)")
        print(f"  dispatch + accept:       p50 {statistics.median(total_ms):.3f} ms  "
              f"p99 {pct(total_ms, 0.99):.3f} ms")
    finally:
        await redis.aclose()
        flush(prefix)


async def _route(prefix: str, worker: int, seconds: float,
                 out: multiprocessing.Queue[int]) -> None:
    """One 'node': its own agents, calls into the shared queues, as fast as Redis allows."""
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    router = RedisRouter(redis, prefix, QUEUES)
    routed = 0
    n = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now = time.time()
        n += 1
        cid = f"w{worker}c{n}"
        await router.enqueue(Call(id=cid, session_id=cid, queue="tax", terminal_id=cid,
                                  enqueued_at=now))
        for offer in await router.dispatch(now):
            call = await router.accept(offer.call_id, offer.agent_id, now)
            await router.hangup(call.id, now)
            await router.wrapup_done(offer.agent_id, now)
            routed += 1
    out.put(routed)
    await redis.aclose()


def _worker(prefix: str, worker: int, seconds: float, out: multiprocessing.Queue[int]) -> None:
    asyncio.run(_route(prefix, worker, seconds, out))


async def _setup_agents(prefix: str, agents: int) -> None:
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    router = RedisRouter(redis, prefix, QUEUES)
    await router.start()
    for i in range(agents):
        await router.agent_join(Agent(id=f"a{i}", name=f"A{i}", skills={"tax": 1}), 0.0)
        await router.set_status(f"a{i}", AgentState.AVAILABLE, 0.0)
    await redis.aclose()


def rate(seconds: float = 5.0) -> None:
    """Calls routed (queued, offered, answered, ended, specialist free again) per second."""
    for procs in (1, 2, 4):
        prefix = f"vwbench{uuid.uuid4().hex[:8]}"
        asyncio.run(_setup_agents(prefix, 100))
        out: multiprocessing.Queue[int] = multiprocessing.Queue()
        workers = [multiprocessing.Process(target=_worker, args=(prefix, i, seconds, out))
                   for i in range(procs)]
        for w in workers:
            w.start()
        total = sum(out.get() for _ in workers)
        for w in workers:
            w.join()
        flush(prefix)
        print(f"  {procs} router process(es): {total / seconds:8.0f} calls routed/s cluster-wide")


class ClusterNode(VwinServer):
    """One `vwin serve` of a cluster: Redis routing, one SQLite file shared by every node."""

    def __init__(self, work: Path, name: str, db_url: str, prefix: str, root: Path = ROOT,
                 routing: str = "", extra: str = "") -> None:
        """`root`: the checkout whose server runs; `routing`: more `[routing]` keys;
        `extra`: more tables."""
        (work / name).mkdir()
        super().__init__(work / name, root=root)
        self.db_url = db_url
        self.config.write_text(
            f'[server]\nhost = "127.0.0.1"\nport = {self.port}\nnode_id = "{name}"\n'
            "rate_per_s = 1000000\nrate_burst = 1000000\n"
            f'[storage]\nurl = "{db_url}"\n'
            f'[routing]\nbackend = "redis"\nkey_prefix = "{prefix}"\n{routing}'
            "[limits]\nws_per_address = 1000000\nunauthenticated_per_address = 1000000\n"
            + extra)


async def _start_pair(pairs: int, work: Path, prefix: str
                      ) -> tuple[list[ClusterNode], relay_bench.Target]:
    """Nodes a and b, one after the other (they share a database); terminals on a, specialists
    on b, so every relayed message crosses Redis."""
    db_url = f"sqlite+aiosqlite:///{work / 'cluster.db'}"
    accounts = await provision(db_url, pairs, pairs)
    nodes = [ClusterNode(work, name, db_url, prefix) for name in ("a", "b")]
    for node in nodes:
        await node.start()
    redis = Redis.from_url(REDIS_URL)
    redis_pid = int((await redis.info("server"))["process_id"])
    await redis.aclose()
    a, b = nodes
    return nodes, relay_bench.Target(
        "vwin 2 nodes", a.url, a.pid, list(accounts.terminals.values()),
        list(accounts.specialists.values()), specialist_url=b.url, more_pids=(b.pid, redis_pid))


def relay(pairs: int, seconds: float, window: int) -> str:
    """bench.relay's two targets and a two-node cluster, measured one at a time in one run."""
    raise_fd_limit()
    ctx = multiprocessing.get_context("spawn")
    bare_port = free_port()
    bare = ctx.Process(target=serve_bare, args=(bare_port,), daemon=True)
    bare.start()
    prefix = f"vwbench{uuid.uuid4().hex[:8]}"
    results: dict[str, dict[str, Any]] = {}
    with workdir("vwin-cluster-relay-") as work:
        (work / "single").mkdir()
        single, single_target = asyncio.run(relay_bench._start(pairs, work / "single"))
        nodes: list[ClusterNode] = []
        try:
            nodes, pair_target = asyncio.run(_start_pair(pairs, work, prefix))
            assert bare.pid is not None
            bare_target = relay_bench.Target("bare", f"http://127.0.0.1:{bare_port}", bare.pid,
                                             single_target.terminals, single_target.specialists)
            asyncio.run(relay_bench._wait_listening(bare_target.url))
            with ctx.Pool(1) as pool:
                for target in (bare_target, single_target, pair_target):
                    results[target.name] = pool.apply(relay_bench._load,
                                                      (target, seconds, window, None))
        finally:
            for server in (single, *nodes):
                server.stop()
            bare.terminate()
            bare.join()
            flush(prefix)
    rows = [[name, r["peak"], f"{r['srv_cpu']:.0%}", f"{r['load_cpu']:.0%}", r["rate"],
             r["p50"], r["p99"], r["max"]] for name, r in results.items()]
    two, one, yard = (results[n]["peak"] for n in ("vwin 2 nodes", "vwin", "bare"))
    return (table(f"Relay through two nodes: {pairs} pairs, window {window}, {seconds:g} s per "
                  f"phase, load average {os.getloadavg()[0]:.1f}",
                  ["server", "peak msg/s", "server CPU", "load CPU", "half-peak msg/s",
                   "p50 ms", "p99 ms", "max ms"], rows)
            + f"\n2 nodes / 1 node throughput: {two / one:.0%}; 2 nodes / bare: {two / yard:.0%} "
              "(server CPU of 2 nodes = both nodes + Redis)\n")


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "assign"
    if what == "assign":
        asyncio.run(assign())
    elif what == "relay":
        parser = argparse.ArgumentParser(description="relay through two nodes")
        parser.add_argument("--pairs", type=int, default=100)
        parser.add_argument("--seconds", type=float, default=5.0)
        parser.add_argument("--window", type=int, default=8)
        args = parser.parse_args(sys.argv[2:])
        print(relay(args.pairs, args.seconds, args.window))
    else:
        print("calls routed per second (each = enqueue, dispatch, accept, hangup, wrap-up):")
        rate()
