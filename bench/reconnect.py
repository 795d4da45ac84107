"""Restart without losing the room: 10,000 connected terminals, `vwin serve` is restarted.

The terminals live in a separate load process and behave like the kiosk: when their socket
closes they reconnect with jittered exponential backoff (0.5 s doubling, capped at 5 s)
and say `hello` again. The server is stopped (SIGTERM: sockets closed with "server
shutdown") and started again on the same port and database. Figures: seconds from the new
server answering `/healthz` until every terminal has its `welcome` again, the new server's
CPU per `hello` over that time, and how many hellos were refused (goal: none).

Each run measures the old hello path too, in the same run: `[auth] hello_batch = false`
looks every device token up in the database (one round trip a hello); the default lets
the hellos that arrive together share one query (server/coalesce.py), nothing cached.

    python -m bench.reconnect [--terminals 10000] [--modes off,on]
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

import aiohttp

from bench.common import VwinServer, cpu_seconds, raise_fd_limit, table, workdir
from bench.idle import _idle as idle_like_a_kiosk
from bench.provision import provision

CONNECT_CONCURRENCY = 200  # handshakes in flight at once from the load process
BACKOFF_MIN_S = 0.5  # the kiosk's reconnect backoff (web/static/js/signaling.js)
BACKOFF_MAX_S = 5.0
GOAL_S = 30.0
GOAL_CPU_MS = 1.0
BASELINE_CPU_MS = 6.9  # server CPU per hello before this change (docs/benchmarks.md, idle)
UNAUTHORIZED = 4401
CONNECT_TIMEOUT_S = 5.0


class Terminal:
    """One kiosk's signalling loop: connect, hello, hold; on loss back off and reconnect."""

    def __init__(self, token: str, url: str, http: aiohttp.ClientSession,
                 gate: asyncio.Semaphore, state: dict[str, int]) -> None:
        self.token, self.url, self.http, self.gate, self.state = token, url, http, gate, state
        self.welcomed = asyncio.Event()
        self.stopping = False

    async def run(self) -> None:
        delay = BACKOFF_MIN_S
        while not self.stopping:
            try:
                async with self.gate:
                    ws = await self.http.ws_connect(self.url, autoping=True, max_msg_size=0)
                    await ws.send_str(json.dumps({"type": "hello", "token": self.token}))
                    first = await ws.receive(timeout=60)
                if first.type == aiohttp.WSMsgType.TEXT and '"welcome"' in first.data[:40]:
                    self.welcomed.set()
                    self.state["welcomes"] += 1
                    delay = BACKOFF_MIN_S
                    await self._hold(ws)
                elif ws.close_code == UNAUTHORIZED or '"error"' in str(first.data)[:40]:
                    self.state["refused"] += 1
                await ws.close()
            except (TimeoutError, aiohttp.ClientError, OSError):
                pass
            if self.stopping:
                return
            await asyncio.sleep(random.uniform(0, delay))  # full jitter
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _hold(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            await idle_like_a_kiosk(ws)
        finally:
            self.welcomed.clear()


async def _load_main(url: str, tokens: list[str], pipe: Connection) -> None:
    state = {"welcomes": 0, "refused": 0}
    # A browser gives up a connection attempt too; the kiosk's backoff then tries again.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT_S)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        terminals = [Terminal(t, url, http, gate, state) for t in tokens]
        tasks = [asyncio.create_task(t.run()) for t in terminals]
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, pipe.recv)
            if command == "stop":
                break
            # "wait": report once every terminal holds a welcomed socket
            start = time.perf_counter()
            while not all(t.welcomed.is_set() for t in terminals):
                await asyncio.sleep(0.05)
            pipe.send((time.perf_counter() - start, dict(state)))
        for t in terminals:
            t.stopping = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("stopped", dict(state)))


def _load(url: str, tokens: list[str], pipe: Connection) -> None:
    raise_fd_limit()
    asyncio.run(_load_main(url, tokens, pipe))


async def _answering(server: VwinServer) -> None:
    await server.start()


def _one(terminals: int, batch: bool) -> list[object]:
    with workdir("vwin-reconnect-") as work:
        extra = f"[auth]\nhello_batch = {str(batch).lower()}\n[recording]\nenabled = false\n"
        server = VwinServer(work, extra_toml=extra)
        tokens = list(asyncio.run(provision(server.db_url, terminals, 0)).terminals.values())
        asyncio.run(server.start())
        ours, theirs = mp.get_context("spawn").Pipe()
        load = mp.get_context("spawn").Process(target=_load,
                                               args=(server.url + "/ws", tokens, theirs))
        load.start()
        try:
            ours.send("wait")
            connect_s, _ = ours.recv()
            server.stop()  # SIGTERM: every socket closed with "server shutdown"
            load_before = os.getloadavg()[0]
            asyncio.run(server.start())  # same port, same database
            cpu0 = cpu_seconds(server.pid)
            ours.send("wait")
            back_s, state = ours.recv()
            cpu_ms = (cpu_seconds(server.pid) - cpu0) / terminals * 1000
            ours.send("stop")
            ours.recv()
        finally:
            load.join(60)
            if load.is_alive():
                load.kill()
            server.stop()
    refused = state["refused"]
    return ["on" if batch else "off (old path)", terminals, connect_s, back_s, cpu_ms, refused,
            f"{load_before:.1f}"]


def report(terminals: int, modes: list[bool]) -> str:
    hard = raise_fd_limit()
    if hard < terminals + 1000:
        raise SystemExit(f"open-files hard limit {hard} is too low for {terminals} sockets")
    rows = [_one(terminals, batch) for batch in modes]
    lines = [table(f"Restart: {terminals:,} connected terminals, vwin serve stopped and "
                   "started again (baseline: 6.9 ms CPU per hello)",
                   ["hello batch", "terminals", "first connect s", "all back s",
                    "server CPU ms/hello", "refused", "load average at restart"], rows)]
    for row in rows:
        back, cpu, refused = float(str(row[3])), float(str(row[4])), row[5]
        lines.append(f"hello batch {row[0]}: all back in {back:.1f} s (goal < {GOAL_S:.0f} s: "
                     f"{'met' if back < GOAL_S else 'MISSED'}), {cpu:.2f} ms CPU per hello "
                     f"(goal < {GOAL_CPU_MS:.0f} ms: {'met' if cpu < GOAL_CPU_MS else 'MISSED'}; "
                     f"baseline {BASELINE_CPU_MS} ms), {refused} refused")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--modes", default="off,on", help="hello batch off (old path), on")
    args = parser.parse_args()
    modes = [m.strip() == "on" for m in args.modes.split(",") if m.strip()]
    print(report(args.terminals, modes))


if __name__ == "__main__":
    main()
