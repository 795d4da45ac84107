"""A dead node taken over: how long until the survivor has settled all its principals.

    python -m bench.takeover [--terminals 1500] [--queued 0.1] [--rounds 2] [--hogs 0]
                             [--resume] [--root OTHER --root .]

Two `vwin serve` nodes (Redis routing, a throw-away PostgreSQL database). `--terminals`
kiosks say hello on node a, a `--queued` share of them requests a call that waits (its
one specialist is signed in on node b, away), then node a is killed (SIGKILL) and its
kiosks stay away (no reconnect: the takeover alone is measured). Figures per checkout:
seconds from the kill until the survivor fences a (its heartbeat lapsed:
`keys.HEARTBEAT_TTL_S`, and a sweep), from the fence until it reads `over` (every
principal's resume grace started, the queued calls held), and the survivor's CPU
meanwhile. `--hogs N`: N processes spin on the 2 cores from the kill on, as the
overload day's peak did (a takeover of 1,466 principals then took 1.5 min). `--resume`:
the killed node's kiosks reconnect to the survivor meanwhile, as the pages do
(`bench/takeover_resume.py`): seconds from the kill until all are welcomed back, hello
latency p50/p99, refusals, the survivor's CPU per hello (its CPU from the kill until all
are back and the takeover is over, over the hellos), and a recorder on a (no media) whose
place in the recorders' pool the survivor takes away: seconds from the fence until it
has (new calls are given the dead recorder until then). Each
`--root` (default: this checkout) runs in turn, alternated `--rounds` times: the
baseline in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import time
import uuid
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from bench.cluster import REDIS_URL, ClusterNode, flush
from bench.common import (
    START_TIMEOUT_S,
    add_roots,
    alternated,
    cpu_seconds,
    hot_spots,
    percentile,
    profile,
    raise_fd_limit,
    spin,
    table,
    wait_healthy,
    workdir,
)
from bench.pg import create_database, drop_database
from bench.provision import provision
from bench.takeover_resume import Comeback, come_back
from server.auth import token_hash
from server.cluster import keys
from server.recording.embedded import new_recorder_token
from server.storage.db import Database

CONNECT_IN_FLIGHT = 100  # hellos under way at once from this process
TAKEOVER_TIMEOUT_S = 600.0
RECORDER = "rec-a"  # `--resume`: the killed node's recorder (a signalling socket, no media)
QUEUE = '[[queues]]\nid = "tax"\nname = "税务咨询"\nname_en = "Tax consultation"\n'


def _node(work: Path, name: str, db_url: str, prefix: str, root: Path,
          recording: bool) -> ClusterNode:
    """One node of the pair: no rebalancing (the kiosks stay where they are), one queue;
    recording only with a recorder of the bench's own (`_with_recorder`)."""
    record = (f'enabled = true\nlocal_recorder = false\ndir = "{work / "recordings"}"\n'
              if recording else "enabled = false\n")
    return ClusterNode(work, name, db_url, prefix, root=root,
                       routing="rebalance_interval_s = 0\n",
                       extra=f"[recording]\n{record}{QUEUE}")


async def _with_recorder(node: ClusterNode, db_url: str, redis: Redis, prefix: str,
                         http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    """Start `node` with `RECORDER` on it (a node that records serves once one joined)."""
    db = await Database.connect(db_url)
    try:
        token = new_recorder_token()
        await db.add_recorder(RECORDER, token_hash(token))
    finally:
        await db.close()
    with (node.workdir / "server.log").open("wb") as log:  # the child has its own copy
        node.spawn(node.root, log)
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            try:
                ws = await http.ws_connect(node.url + "/ws")
                break
            except (aiohttp.ClientError, OSError):
                await asyncio.sleep(0.1)
        await ws.send_json({"type": "hello", "token": token, "capacity": 10})
        await _until(ws, "welcome")
        while await redis.zscore(keys.recorders_live(prefix), RECORDER) is None:
            await asyncio.sleep(0.05)
    await wait_healthy(node.url, node.proc, "vwin serve", node.log_tail, START_TIMEOUT_S)
    return ws


Kiosk = tuple[aiohttp.ClientWebSocketResponse, str, str]  # socket, device token, resume


async def _kiosks(url: str, tokens: list[str], queued: int,
                  http: aiohttp.ClientSession) -> list[Kiosk]:
    """Every kiosk welcomed on `url`; the first `queued` of them with a call queued."""
    limit = asyncio.Semaphore(CONNECT_IN_FLIGHT)

    async def one(n: int, token: str) -> Kiosk:
        async with limit:
            ws = await http.ws_connect(url + "/ws", timeout=aiohttp.ClientWSTimeout(ws_close=5))
            await ws.send_json({"type": "hello", "token": token})
            welcome = await _until(ws, "welcome")
            if n < queued:
                await ws.send_json({"type": "call.request", "queue": "tax"})
                await _until(ws, "call.queued")
            return ws, token, str(welcome["resume"])

    return list(await asyncio.gather(*(one(n, t) for n, t in enumerate(tokens))))


async def _until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, object]:
    async with asyncio.timeout(120):
        while True:
            msg: dict[str, object] = json.loads(await ws.receive_str())
            if msg["type"] == kind:
                return msg
            if msg["type"] in ("error", "call.rejected"):
                raise RuntimeError(f"waiting for {kind}: {msg}")


async def _instance(redis: Redis, prefix: str, node_id: str) -> str:
    for instance, owner in (await redis.hgetall(keys.nodes(prefix))).items():
        if owner == node_id:
            return str(instance)
    raise RuntimeError(f"node {node_id} is not registered")


async def one_takeover(root: Path, terminals: int, queued: int, hogs: int = 0,
                       resume: bool = False, spy_to: Path | None = None) -> dict[str, float]:
    """Start a pair from `root`, fill node a, kill it (`hogs` spinning from then on, its
    kiosks coming back to b with `resume`); the takeover's figures."""
    prefix = f"vwbench{uuid.uuid4().hex[:8]}"
    name, db_url = await create_database("vwin_takeover")
    redis = Redis.from_url(REDIS_URL, decode_responses=True)
    nodes: list[ClusterNode] = []
    try:
        accounts = await provision(db_url, terminals, 1)
        with workdir("vwin-takeover-") as work:
            nodes = [_node(work, n, db_url, prefix, root, resume) for n in ("a", "b")]
            a, b = nodes
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)) as http:
                recorder: list[aiohttp.ClientWebSocketResponse] = []
                if resume:
                    recorder.append(await _with_recorder(a, db_url, redis, prefix, http))
                else:
                    await a.start()
                await b.start()
                instance = await _instance(redis, prefix, "a")
                fence = keys.fence(prefix, instance)
                desk = await _kiosks(b.url, list(accounts.specialists.values()), 0, http)
                on_a = await _kiosks(a.url, list(accounts.terminals.values()), queued, http)
                sockets = [k[0] for k in desk + on_a] + recorder
                seen = Comeback()
                back = [asyncio.create_task(come_back(*k, b.url, http, seen))
                        for k in on_a if resume]
                held = await redis.scard(keys.node_principals(prefix, instance))
                spinning = [mp.get_context("spawn").Process(target=spin, daemon=True)
                            for _ in range(hogs)]
                for hog in spinning:
                    hog.start()
                cpu_before = cpu_seconds(b.pid)
                killed = time.monotonic()
                os.kill(a.pid, signal.SIGKILL)
                spy = None if spy_to is None else profile(b.pid, TAKEOVER_TIMEOUT_S, spy_to)
                fenced = over = out = 0.0
                try:
                    async with asyncio.timeout(TAKEOVER_TIMEOUT_S):
                        while not over:
                            value = await redis.get(fence)
                            now = time.monotonic()
                            if value and not fenced:
                                fenced = now
                            if resume and not out and await redis.zscore(
                                    keys.recorders_live(prefix), RECORDER) is None:
                                out = now
                            if value == "over":
                                over = now
                            await asyncio.sleep(0.05)
                        await asyncio.gather(*back)
                finally:
                    if spy is not None:  # SIGINT: py-spy writes what it sampled so far
                        spy.send_signal(signal.SIGINT)
                        spy.wait(60)
                    for hog in spinning:
                        hog.kill()
                        hog.join()
                cpu = cpu_seconds(b.pid) - cpu_before
                for ws in sockets + seen.sockets:
                    await ws.close()
            b.stop()
            a.stop()
        return {"principals": held, "detect": fenced - killed, "takeover": over - fenced,
                "cpu": cpu, **_came_back(seen, killed),
                **({"recorder_out": out - fenced} if resume else {})}
    finally:
        for node in nodes:
            node.stop()
        await redis.aclose()
        flush(prefix)
        await drop_database(name)


def _came_back(seen: Comeback, killed: float) -> dict[str, float]:
    if not seen.hellos:
        return {}
    return {"back": max(seen.back_at) - killed, "hellos": len(seen.hellos),
            "hello_p50": percentile(seen.hellos, 50), "hello_p99": percentile(seen.hellos, 99),
            "hello_max": max(seen.hellos), "resumed": seen.resumed, "refused": seen.refused,
            "attempts": seen.attempts}


def _row(root: Path, n: int, got: dict[str, float]) -> list[object]:
    row: list[object] = [str(root), n + 1, int(got["principals"]), got["detect"],
                         got["takeover"], got["cpu"],
                         1000 * got["cpu"] / max(1, got["principals"])]
    if "back" in got:
        row += [got["recorder_out"], got["back"], 1000 * got["hello_p50"], 1000 * got["hello_p99"],
                1000 * got["hello_max"], 1000 * got["cpu"] / got["hellos"],
                f"{int(got['resumed'])}/{int(got['hellos'])}", int(got["refused"]),
                int(got["attempts"])]
    return [*row, f"{os.getloadavg()[0]:.1f}"]


COLUMNS = ["checkout", "round", "principals", "kill -> fence s", "fence -> over s",
           "survivor CPU s", "CPU ms a principal"]
RESUME_COLUMNS = ["fence -> recorder out s", "kill -> all back s", "hello p50 ms",
                  "hello p99 ms", "hello max ms", "survivor CPU ms a hello", "resumed",
                  "refused", "attempts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--terminals", type=int, default=1500)
    parser.add_argument("--queued", type=float, default=0.1, help="share with a call queued")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--hogs", type=int, default=0, help="processes spinning meanwhile")
    parser.add_argument("--resume", action="store_true",
                        help="the killed node's kiosks reconnect to the survivor meanwhile")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory: py-spy the survivor from the kill until done")
    add_roots(parser)
    args = parser.parse_args()
    raise_fd_limit()
    rows: list[list[object]] = []
    for n, root in alternated(args.root, args.rounds):
        spy_to = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            spy_to = args.profile / f"survivor-{len(rows)}.txt"
        got = asyncio.run(one_takeover(root, args.terminals,
                                       int(args.terminals * args.queued), args.hogs,
                                       args.resume, spy_to))
        if spy_to is not None and spy_to.exists():
            print(f"{spy_to}:\n{hot_spots(spy_to, 40)}\n", flush=True)
        rows.append(_row(root, n, got))
        print(rows[-1], flush=True)
    print(table(f"Takeover of a killed node: {args.terminals} kiosks, {args.queued:.0%} "
                f"queued, {args.hogs} processes spinning"
                + (", its kiosks coming back to the survivor" if args.resume else ""),
                COLUMNS + (RESUME_COLUMNS if args.resume else []) + ["load average"], rows))


if __name__ == "__main__":
    main()
