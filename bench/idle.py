"""Idle capacity: 10,000 authenticated terminals connected to one `vwin serve` process.

The terminals are provisioned in bulk, the server runs as a subprocess and
the terminals live in a separate load process (multiprocessing). Once all of
them got `welcome`, the server's memory per connection (RSS delta / N) and
its CPU at rest are read from /proc over `--rest` seconds, while each terminal
sends the application `ping` a kiosk sends to stay under the 30 s idle limit.
Goal: under 30 KB per connection.

    python -m bench.idle [--terminals 10000] [--rest 30]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import time
from multiprocessing.connection import Connection
from pathlib import Path

import aiohttp

from bench.common import VwinServer, cpu_seconds, raise_fd_limit, rss_kb, table, workdir
from bench.provision import provision
from bench.signalling import hello

CONNECT_CONCURRENCY = 100  # hellos in flight at once while connecting
KEEPALIVE_S = 20.0  # application ping interval per terminal, under idle_timeout_s = 30
SETTLE_S = 3.0  # after the last welcome, before reading RSS
GOAL_KB = 30.0


async def _hold(url: str, tokens: list[str], pipe: Connection) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        tasks: list[asyncio.Task[None]] = []

        async def one(token: str) -> aiohttp.ClientWebSocketResponse:
            async with gate:
                ws = (await hello(http, url, token))[0]
            tasks.append(asyncio.create_task(_idle(ws)))  # keep alive from the first moment
            return ws

        start = time.perf_counter()
        sockets = await asyncio.gather(*(one(t) for t in tokens))
        pipe.send(("connected", len(sockets), time.perf_counter() - start))
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        dropped = sum(1 for ws in sockets if ws.closed)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)
        pipe.send(("dropped", dropped, 0.0))


async def _idle(ws: aiohttp.ClientWebSocketResponse) -> None:
    """Read whatever comes (queue.status...) and ping like a kiosk, phase-shifted at random."""
    async def keepalive() -> None:
        await asyncio.sleep(random.uniform(0, KEEPALIVE_S))
        while True:
            await ws.send_str(json.dumps({"type": "ping"}))
            await asyncio.sleep(KEEPALIVE_S)

    pinger = asyncio.create_task(keepalive())
    try:
        async for _ in ws:
            pass
    finally:
        pinger.cancel()


def _load(url: str, tokens: list[str], pipe: Connection) -> None:
    """The load process: hold every terminal's socket until told to stop."""
    raise_fd_limit()
    asyncio.run(_hold(url, tokens, pipe))


def report(terminals: int, rest_s: float) -> str:
    hard = raise_fd_limit()
    if hard < terminals + 1000:
        raise SystemExit(f"open-files hard limit {hard} is too low for {terminals} sockets")
    with workdir("vwin-idle-") as work:
        server = VwinServer(work)
        accounts = asyncio.run(provision(server.db_url, terminals, 0))
        asyncio.run(server.start())
        try:
            return _measure(server, list(accounts.terminals.values()), rest_s, work)
        finally:
            server.stop()


def _measure(server: VwinServer, tokens: list[str], rest_s: float, work: Path) -> str:
    del work
    time.sleep(SETTLE_S)
    rss_before = rss_kb(server.pid)
    ours, theirs = mp.get_context("spawn").Pipe()
    load = mp.get_context("spawn").Process(target=_load, args=(server.url + "/ws", tokens, theirs))
    load.start()
    cpu_start = cpu_seconds(server.pid)
    _, connected, connect_s = ours.recv()
    cpu_hello_ms = (cpu_seconds(server.pid) - cpu_start) / connected * 1000
    time.sleep(SETTLE_S)
    rss_after = rss_kb(server.pid)
    cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
    time.sleep(rest_s)
    cpu_rest = (cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - t0)
    rss_end = rss_kb(server.pid)
    ours.send("stop")
    _, dropped, _ = ours.recv()
    load.join(60)
    per_conn = (rss_after - rss_before) / connected
    rows = [[connected, connect_s, cpu_hello_ms, rss_before / 1024, rss_after / 1024,
             per_conn, f"{cpu_rest:.1%}", rss_end / 1024, dropped]]
    return (table(f"Idle: {connected:,} authenticated terminals on one vwin process, "
                  f"{rest_s:g} s at rest, load average {os.getloadavg()[0]:.1f}",
                  ["terminals", "connect s", "server CPU ms/hello", "RSS before MB", "RSS after MB",
                   "KB per connection", "server CPU at rest", "RSS end MB", "dropped"], rows)
            + f"\nmemory per connection {per_conn:.1f} KB (goal < {GOAL_KB:.0f} KB: "
              f"{'met' if per_conn < GOAL_KB else 'MISSED'}); CPU at rest includes one "
              f"application ping per terminal every {KEEPALIVE_S:g} s\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--rest", type=float, default=30.0)
    args = parser.parse_args()
    print(report(args.terminals, args.rest))


if __name__ == "__main__":
    main()
