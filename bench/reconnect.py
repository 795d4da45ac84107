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
import signal
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    VwinServer,
    cpu_seconds,
    hot_spots,
    profile,
    raise_fd_limit,
    table,
    workdir,
)
from bench.provision import provision
from bench.wsload import WsClient

CONNECT_CONCURRENCY = 200  # handshakes in flight at once from the load process
BACKOFF_MIN_S = 0.5  # the kiosk's reconnect backoff (web/static/js/signaling.js)
BACKOFF_MAX_S = 5.0
GOAL_S = 30.0
GOAL_CPU_MS = 1.0
BASELINE_CPU_MS = 6.9  # server CPU per hello before this change (docs/benchmarks.md, idle)
UNAUTHORIZED = 4401
CONNECT_TIMEOUT_S = 5.0  # a browser gives up a connection attempt too, then backs off
WELCOME_TIMEOUT_S = 60.0
KEEPALIVE_S = 20.0  # the kiosk's application ping, under idle_timeout_s = 30
REST_S = 5.0
PROGRESS_S = 15.0
SPY_MAX_S = 900  # py-spy's limit; it is stopped once all are back


class Terminal:
    """One kiosk's signalling loop: connect, hello, hold; on loss back off and reconnect."""

    def __init__(self, token: str, url: str, gate: asyncio.Semaphore,
                 state: dict[str, int]) -> None:
        self.hello = json.dumps({"type": "hello", "token": token})
        self.url, self.gate, self.state = url, gate, state
        self.stopping = False

    async def run(self) -> None:
        delay = BACKOFF_MIN_S
        while not self.stopping:
            ws: WsClient | None = None
            try:
                async with self.gate:
                    ws = await WsClient.connect(self.url, CONNECT_TIMEOUT_S, WELCOME_TIMEOUT_S)
                    ws.send_text(self.hello)
                    first = await self._first(ws)
                if '"welcome"' in first[:40]:
                    self.state["welcomes"] += 1
                    self.state["welcomed"] += 1
                    delay = BACKOFF_MIN_S
                    try:
                        await self._hold(ws)
                    finally:
                        self.state["welcomed"] -= 1
                    code = ws.closed.result() if ws.closed.done() else 0
                    self.state[f"closed {code}"] = self.state.get(f"closed {code}", 0) + 1
                elif '"error"' in first or (ws.closed.done()
                                            and ws.closed.result() == UNAUTHORIZED):
                    self.state["refused"] += 1
            except (TimeoutError, ConnectionError, OSError):
                pass
            finally:
                if ws is not None:
                    ws.close()
            if self.stopping:
                return
            await asyncio.sleep(random.uniform(0, delay))  # full jitter
            delay = min(delay * 2, BACKOFF_MAX_S)

    @staticmethod
    async def _first(ws: WsClient) -> str:
        """The first text frame, or "" when the socket closes first."""
        text = asyncio.ensure_future(ws.texts.get())
        either: list[asyncio.Future[Any]] = [text, ws.closed]
        try:
            await asyncio.wait(either, timeout=WELCOME_TIMEOUT_S,
                               return_when=asyncio.FIRST_COMPLETED)
            return text.result() if text.done() else ""
        finally:
            text.cancel()

    @staticmethod
    async def _hold(ws: WsClient) -> None:
        """Ping like a kiosk (phase-shifted at random) until the socket closes."""
        ping = json.dumps({"type": "ping"})
        await asyncio.wait([ws.closed], timeout=random.uniform(0, KEEPALIVE_S))
        while not ws.closed.done():
            ws.send_text(ping)
            while not ws.texts.empty():  # queue.status, pong: read and dropped
                ws.texts.get_nowait()
            await asyncio.wait([ws.closed], timeout=KEEPALIVE_S)


async def _load_main(url: str, tokens: list[str], pipe: Connection) -> None:
    state = {"welcomes": 0, "welcomed": 0, "refused": 0}
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    terminals = [Terminal(t, url, gate, state) for t in tokens]
    tasks = [asyncio.create_task(t.run()) for t in terminals]
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "stop":
            break
        # "wait": report (on the system-wide monotonic clock) when all hold a welcomed socket
        last = time.monotonic()
        while state["welcomed"] < len(terminals):
            await asyncio.sleep(0.05)
            if time.monotonic() - last > PROGRESS_S:  # a stuck storm says how it stands
                last = time.monotonic()
                print(f"load {os.getpid()}: {state}", file=sys.stderr, flush=True)
        pipe.send((time.monotonic(), dict(state)))
    for t in terminals:
        t.stopping = True
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    pipe.send(("stopped", dict(state)))


def _load(url: str, tokens: list[str], pipe: Connection) -> None:
    raise_fd_limit()
    asyncio.run(_load_main(url, tokens, pipe))


class Load:
    """The terminals spread over `processes` load processes (each its own event loop)."""

    def __init__(self, url: str, tokens: list[str], processes: int) -> None:
        spawn = mp.get_context("spawn")
        self.pipes: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for n in range(processes):
            ours, theirs = spawn.Pipe()
            proc = spawn.Process(target=_load, args=(url, tokens[n::processes], theirs))
            proc.start()
            self.pipes.append(ours)
            self.procs.append(proc)

    def all_welcomed(self) -> tuple[float, dict[str, int]]:
        """Seconds until every terminal of every process holds a welcomed socket."""
        start = time.monotonic()
        for pipe in self.pipes:
            pipe.send("wait")
        answers = [pipe.recv() for pipe in self.pipes]
        state: dict[str, int] = {}
        for _, counts in answers:
            for key, n in counts.items():
                state[key] = state.get(key, 0) + n
        return max(a[0] for a in answers) - start, state

    def stop(self) -> None:
        for pipe in self.pipes:
            pipe.send("stop")
        for pipe in self.pipes:
            pipe.recv()

    def join(self) -> None:
        for proc in self.procs:
            proc.join(60)
            if proc.is_alive():
                proc.kill()


async def _answering(server: VwinServer) -> None:
    await server.start()


def _one(terminals: int, batch: bool, options: Options) -> list[object]:
    with workdir("vwin-reconnect-") as work:
        extra = f"[auth]\nhello_batch = {str(batch).lower()}\n[recording]\nenabled = false\n"
        server = VwinServer(work, extra_toml=extra, root=options.root)
        tokens = list(asyncio.run(provision(server.db_url, terminals, 0)).terminals.values())
        asyncio.run(server.start())
        load = Load(server.url + "/ws", tokens, options.load_processes)
        try:
            connect_s, _ = load.all_welcomed()
            cpu0 = cpu_seconds(server.pid)
            time.sleep(REST_S)  # the cost of holding them all (kiosk pings), for comparison
            rest_ms_s = (cpu_seconds(server.pid) - cpu0) / REST_S * 1000
            server.stop()  # SIGTERM: every socket closed with "server shutdown"
            load_before = os.getloadavg()[0]
            asyncio.run(server.start())  # same port, same database
            cpu0 = cpu_seconds(server.pid)
            spies = [] if options.spy_to is None else [
                profile(pid, SPY_MAX_S, options.spy_to / f"{name}{n}.txt")
                for name, pids in (("server", [server.pid]),
                                   ("load", [p.pid for p in load.procs if p.pid]))
                for n, pid in enumerate(pids)]
            back_s, state = load.all_welcomed()
            cpu_ms = (cpu_seconds(server.pid) - cpu0) / terminals * 1000
            for spy in spies:
                if spy is not None:  # SIGINT: py-spy writes what it sampled so far
                    spy.send_signal(signal.SIGINT)
                    spy.wait(60)
            load.stop()
        finally:
            load.join()
            server.stop()
    net_ms = cpu_ms - rest_ms_s * back_s / terminals
    return [options.label, "on" if batch else "off (old path)", terminals,
            options.load_processes, connect_s, back_s, cpu_ms, net_ms, rest_ms_s,
            state["refused"], f"{load_before:.1f}"]


@dataclass
class Options:
    """Which server, how many load processes, where profiles go."""

    label: str = "this checkout"
    root: Path = ROOT
    load_processes: int = 2
    spy_to: Path | None = None


def report(terminals: int, modes: list[bool], runs: list[Options]) -> str:
    hard = raise_fd_limit()
    if hard < terminals + 1000:
        raise SystemExit(f"open-files hard limit {hard} is too low for {terminals} sockets")
    rows = [_one(terminals, batch, options) for options in runs for batch in modes]
    lines = [table(f"Restart: {terminals:,} connected terminals, vwin serve stopped and "
                   "started again (baseline: 6.9 ms CPU per hello)",
                   ["server", "hello batch", "terminals", "load processes", "first connect s",
                    "all back s", "server CPU ms/hello", "same, less rest CPU",
                    "rest CPU ms/s", "refused", "load average at restart"], rows)]
    for row in rows:
        back, cpu, refused = float(str(row[5])), float(str(row[6])), row[9]
        lines.append(f"{row[0]}, hello batch {row[1]}: all back in {back:.1f} s "
                     f"(goal < {GOAL_S:.0f} s: {'met' if back < GOAL_S else 'MISSED'}), "
                     f"{cpu:.2f} ms CPU per hello (goal < {GOAL_CPU_MS:.0f} ms: "
                     f"{'met' if cpu < GOAL_CPU_MS else 'MISSED'}; baseline "
                     f"{BASELINE_CPU_MS} ms), {refused} refused")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=10_000)
    parser.add_argument("--modes", default="off,on", help="hello batch off (old path), on")
    parser.add_argument("--load-processes", type=int, default=2,
                        help="processes the terminals are spread over")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout: its server is measured first, same load")
    parser.add_argument("--profile", type=Path, default=None,
                        help="directory: py-spy the server and the load over the reconnect")
    args = parser.parse_args()
    modes = [m.strip() == "on" for m in args.modes.split(",") if m.strip()]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = [Options(label="this checkout", load_processes=args.load_processes,
                    spy_to=args.profile)]
    if args.before is not None:
        runs.insert(0, Options(label=str(args.before), root=args.before.resolve(),
                               load_processes=args.load_processes))
    print(report(args.terminals, modes, runs))
    if args.profile is not None:
        for folded in sorted(args.profile.glob("*.txt")):
            print(f"{folded.stem}:\n{hot_spots(folded, 40)}\n")


if __name__ == "__main__":
    main()
