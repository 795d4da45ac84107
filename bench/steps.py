"""A call's three steps through two nodes on a busy machine: what a kiosk waits for.

    python -m bench.steps [--pairs 8] [--calls 60] [--hogs 2] [--rounds 2]
                          [--root OTHER --root .]

Two `vwin serve` nodes (Redis routing, a throw-away PostgreSQL database): `--pairs`
kiosks on node a, as many specialists on node b, so that every step's messages cross
Redis as on the bench day. Each kiosk makes `--calls` calls one after the other:
`call.request` until its `call.queued`, then the specialist offered it sends
`call.accept` until its own `call.connected`, then the kiosk's `call.hangup` until its
`call.ended` (the bench day's three latencies, `bench.day_latency`), and the specialist
ends its wrap-up. `--hogs N` processes spin meanwhile: on 2 cores the nodes, Redis and
PostgreSQL then wait for a CPU at every round trip, as on the bench day, where each
sequential round trip of a step adds its tail to the step's. Figures per checkout:
p50 / p90 / p99 of each step, and the nodes' waits per step by kind
(`vwin_step_wait_seconds`, where the checkout exports it). Each `--root` (default: this
checkout) runs in turn, alternated `--rounds` times: the baseline in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import random
import uuid
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.cluster import ClusterNode, flush
from bench.common import add_roots, alternated, percentile, raise_fd_limit, spin, table, workdir
from bench.day_latency import HANDLE, WAIT, histograms
from bench.pg import create_database, drop_database
from bench.provision import provision
from bench.signalling import receive

STEPS = ("request", "accept", "hangup")
QUEUE = ('[[queues]]\nid = "tax"\nname = "税务咨询"\nname_en = "Tax consultation"\n'
         "wrapup_s = 60\n")
PAUSE_S = (0.0, 0.05)  # between a kiosk's calls: the pairs out of step


async def _desk(ws: aiohttp.ClientWebSocketResponse, took: dict[str, list[float]]) -> None:
    """Answer every offer, time the accept, end the wrap-up after each call."""
    loop = asyncio.get_running_loop()
    await ws.send_json({"type": "agent.status", "status": "available"})
    while True:
        offer = await receive(ws, "call.offered", timeout=3600)
        sent = loop.time()
        await ws.send_json({"type": "call.accept", "call_id": offer["call_id"],
                            "offer": offer["offer"]})
        await receive(ws, "call.connected")
        took["accept"].append(loop.time() - sent)
        await receive(ws, "call.ended")
        await ws.send_json({"type": "agent.wrapup_done"})


async def _kiosk(ws: aiohttp.ClientWebSocketResponse, calls: int,
                 took: dict[str, list[float]]) -> None:
    loop = asyncio.get_running_loop()
    for _ in range(calls):
        await asyncio.sleep(random.uniform(*PAUSE_S))
        sent = loop.time()
        await ws.send_json({"type": "call.request", "queue": "tax"})
        queued = await receive(ws, "call.queued")
        took["request"].append(loop.time() - sent)
        await receive(ws, "call.connected")
        sent = loop.time()
        await ws.send_json({"type": "call.hangup", "call_id": queued["call_id"]})
        await receive(ws, "call.ended")
        took["hangup"].append(loop.time() - sent)


async def _hello(http: aiohttp.ClientSession, url: str, token: str
                 ) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(url + "/ws")
    await ws.send_json({"type": "hello", "token": token})
    await receive(ws, "welcome")
    return ws


async def _waits(http: aiohttp.ClientSession, urls: list[str]) -> dict[str, float]:
    """Over both nodes, from their `/metrics`: waits per kind (count), and as `"handled"`
    and `"waited"` the seconds the timed steps took and the seconds they waited (waits
    side by side counted each: an upper bound)."""
    counts: dict[str, float] = {"handled": 0.0, "waited": 0.0}
    for url in urls:
        async with http.get(url + "/metrics") as resp:
            text = await resp.text()
        for (metric, kind), buckets in histograms(text).items():
            if metric == WAIT:
                counts[kind] = counts.get(kind, 0.0) + buckets.get(float("inf"), 0.0)
        for family in text_string_to_metric_families(text):
            total = "waited" if family.name == WAIT else "handled" if family.name == HANDLE \
                else None
            if total is not None:
                counts[total] += sum(x.value for x in family.samples if x.name.endswith("_sum"))
    return counts


async def one_run(root: Path, pairs: int, calls: int, hogs: int) -> dict[str, object]:
    """A pair of nodes from `root`, the calls, the hogs; each step's latencies (s)."""
    prefix = f"vwbench{uuid.uuid4().hex[:8]}"
    name, db_url = await create_database("vwin_steps")
    nodes: list[ClusterNode] = []
    spinning = [mp.get_context("spawn").Process(target=spin, daemon=True)
                for _ in range(hogs)]
    try:
        accounts = await provision(db_url, pairs, pairs, skills={"tax": 1})
        with workdir("vwin-steps-") as work:
            nodes = [ClusterNode(work, n, db_url, prefix, root=root,
                                 routing="rebalance_interval_s = 0\n",
                                 extra="[recording]\nenabled = false\n" + QUEUE)
                     for n in ("a", "b")]
            for node in nodes:
                await node.start()
            a, b = nodes
            took: dict[str, list[float]] = {step: [] for step in STEPS}
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)) as http:
                desks = [await _hello(http, b.url, t) for t in accounts.specialists.values()]
                kiosks = [await _hello(http, a.url, t) for t in accounts.terminals.values()]
                for hog in spinning:
                    hog.start()
                answering = [asyncio.create_task(_desk(ws, took)) for ws in desks]
                await asyncio.gather(*(_kiosk(ws, calls, took) for ws in kiosks))
                for task in answering:
                    task.cancel()
                await asyncio.gather(*answering, return_exceptions=True)
                waits = await _waits(http, [a.url, b.url])
                for ws in desks + kiosks:
                    await ws.close()
        return {"took": took, "waits": waits}
    finally:
        for hog in spinning:
            if hog.is_alive():
                hog.kill()
                hog.join()
        for node in nodes:
            node.stop()
        flush(prefix)
        await drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--calls", type=int, default=60, help="calls per kiosk")
    parser.add_argument("--hogs", type=int, default=2, help="processes spinning meanwhile")
    parser.add_argument("--rounds", type=int, default=2)
    add_roots(parser)
    args = parser.parse_args()
    raise_fd_limit()
    rows: list[list[object]] = []
    waits: list[str] = []
    for n, root in alternated(args.root, args.rounds):
        got = asyncio.run(one_run(root, args.pairs, args.calls, args.hogs))
        took = got["took"]
        assert isinstance(took, dict)
        row: list[object] = [str(root), n + 1]
        for step in STEPS:
            ms = [t * 1000 for t in took[step]]
            row += [len(ms), percentile(ms, 50), percentile(ms, 90), percentile(ms, 99)]
        rows.append(row)
        counted = got["waits"]
        assert isinstance(counted, dict)
        calls = len(took["hangup"]) or 1
        handled, waited = counted.pop("handled"), counted.pop("waited")
        kinds = ", ".join(f"{kind} {count / calls:.2f}" for kind, count in sorted(
            counted.items(), key=lambda kv: -kv[1])) or "no `vwin_step_wait_seconds`"
        waits.append(f"- {root}, round {n + 1}: steps' time {handled / calls * 1000:.1f} ms "
                     f"a call, in waits {waited / calls * 1000:.1f} ms; waits a call: "
                     + kinds)
    header = ["checkout", "round"] + [f"{step} {what}" for step in STEPS
                                      for what in ("n", "p50 ms", "p90 ms", "p99 ms")]
    print(table(f"A call's steps, {args.pairs} kiosks on node a and {args.pairs} specialists "
                f"on node b, {args.calls} calls each, {args.hogs} processes spinning",
                header, rows))
    print("The nodes' waits per call, by kind (both nodes, every step of a call):")
    print("\n".join(waits))


if __name__ == "__main__":
    main()
