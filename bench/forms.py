"""Forms: render and sign a two-page CJK form through `vwin serve`, and the relay beside it.

One `vwin serve` process (SQLite, memory routing, forms rendered by its worker process).

- form: a specialist and a terminal in a connected call; a sole-proprietor deregistration
  with a Chinese enterprise name; `--forms` times (median of 20 by default) one
  `form.present` -> `form.presented` plus `form.sign` -> `form.signed`: the template
  filled, the signature drawn, the two-page PDF rendered with the CJK font subset and
  embedded, written and hashed into the audit chain. While each form renders, `ping`s
  measure whether the server's event loop stays free (rendering is in another process).
- relay: `bench.relay`'s closed-loop peak of `rtc.candidate` messages (its own load
  process, `--pairs` calls), measured alone, then while forms are presented and signed
  one after another in the same server, then alone again; the loss is against the mean
  of the two runs alone.

Goals: a form in under 500 ms; the relay loses at most 10 % of its throughput.

    python -m bench.forms [--forms 20] [--pairs 50] [--seconds 5] [--window 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import (
    VwinServer,
    cpu_seconds,
    percentile,
    raise_fd_limit,
    table,
    workdir,
)
from bench.provision import provision
from bench.relay import Target, _load
from bench.signalling import hello, pair_calls, receive
from signaling.uscc import check_character

GOAL_MS = 500.0
GOAL_LOSS = 0.10
ENTERPRISE = {"name": "上海嘉定新城张记面馆（个体工商户）",
              "uscc": "91310114MA1GT3000" + check_character("91310114MA1GT3000")}
SIGNATURE = {"width": 640, "height": 240, "strokes": [
    [[40 + 6 * i, 120 + (i % 7) * 9] for i in range(80)],
    [[120 + 3 * i, 40 + 2 * i] for i in range(60)],
    [[400, 60], [420, 200], [460, 90], [520, 190], [600, 70]]]}
PING_EVERY_S = 0.02


def children_cpu(pid: int) -> float:
    """CPU seconds of `pid`'s child processes (the form workers) so far."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += cpu_seconds(int(stat.parent.name))
    return total


class FormClient:
    """Presents and signs forms in one connected call; times each and the pings between."""

    def __init__(self, url: str, terminal: str, specialist: str, pinger: str,
                 server_pid: int) -> None:
        """`pinger`: a terminal's token, for a socket that only pings."""
        self.url = url + "/ws"
        self.server_pid = server_pid
        self.worker_cpu_s = 0.0  # the form workers' CPU over the timed forms
        self.tokens = (terminal, specialist, pinger)
        self.times_ms: list[float] = []
        self.pings_ms: list[float] = []
        self.ready = asyncio.Event()  # in its call, the first form (the worker's start) done

    async def run(self, count: int | None, stop: asyncio.Event | None = None) -> None:
        """`count` forms (None: until `stop` is set), after one to start the worker."""
        async with aiohttp.ClientSession() as http:
            ((kiosk, agent),) = await pair_calls(http, self.url, [self.tokens[0]],
                                                 [self.tokens[1]])
            await agent.ws.send_str(json.dumps({
                "type": "action.start", "call_id": agent.call_id,
                "action": "sole_proprietor_deregistration", "enterprise": ENTERPRISE}))
            action_id = (await receive(agent.ws, "action.updated"))["action_id"]
            pinger = await hello(http, self.url, self.tokens[2])
            await self._one(kiosk.ws, agent.ws, agent.call_id, action_id, None)  # warm up
            self.ready.set()
            cpu = children_cpu(self.server_pid)
            done = 0
            while (count is None or done < count) and not (stop and stop.is_set()):
                took = await self._one(kiosk.ws, agent.ws, agent.call_id, action_id,
                                       pinger[0])
                self.times_ms.append(took)
                done += 1
            self.worker_cpu_s = children_cpu(self.server_pid) - cpu
            for ws in (kiosk.ws, agent.ws, pinger[0]):
                await ws.close()

    async def _one(self, kiosk: Any, agent: Any, call_id: str, action_id: str,
                   pinger: Any) -> float:
        pings = asyncio.create_task(self._ping(pinger)) if pinger is not None else None
        start = time.perf_counter()
        await agent.send_str(json.dumps({"type": "form.present", "call_id": call_id,
                                         "action_id": action_id}))
        form_id = (await receive(kiosk, "form.presented"))["form_id"]
        await kiosk.send_str(json.dumps({"type": "form.sign", "form_id": form_id,
                                         "signature": SIGNATURE}))
        await receive(kiosk, "form.signed", timeout=60)
        took = (time.perf_counter() - start) * 1000
        await receive(agent, "form.signed")
        if pings is not None:
            pings.cancel()
            await asyncio.gather(pings, return_exceptions=True)
        return took

    async def _ping(self, ws: Any) -> None:
        while True:
            start = time.perf_counter()
            await ws.send_str('{"type":"ping"}')
            await receive(ws, "pong")
            self.pings_ms.append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(PING_EVERY_S)


async def _relay_beside_forms(pool: Any, target: Target, seconds: float, window: int,
                              forms: FormClient) -> dict[str, Any]:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(forms.run(None, stop))
    await forms.ready.wait()  # its call is made before the relay's calls are
    try:
        result: dict[str, Any] = await loop.run_in_executor(
            None, pool.apply, _load, (target, seconds, window, None))
    finally:
        stop.set()
        await runner
    return result


def report(count: int, pairs: int, seconds: float, window: int, nice: int = 10) -> str:
    raise_fd_limit()
    ctx = mp.get_context("spawn")
    with workdir("vwin-forms-") as work:
        vwin = VwinServer(work, extra_toml=(
            "rate_per_s = 1000000\nrate_burst = 1000000\n"
            f'[recording]\nenabled = false\ndir = "{work / "recordings"}"\n'
            f"[forms]\nnice = {nice}\n"))
        accounts = asyncio.run(provision(vwin.db_url, pairs + 4, pairs + 2))
        terminals, specialists = (list(accounts.terminals.values()),
                                  list(accounts.specialists.values()))
        asyncio.run(vwin.start())
        try:
            timing = FormClient(vwin.url, terminals[-1], specialists[-1], terminals[-3],
                                vwin.pid)
            try:
                asyncio.run(timing.run(count))
            except ConnectionError as exc:
                raise RuntimeError(f"{exc}; the server's log:\n{vwin.log_tail(40)}") from exc
            target = Target("vwin", vwin.url, vwin.pid, terminals[:pairs], specialists[:pairs])
            beside = FormClient(vwin.url, terminals[-2], specialists[-2], terminals[-4],
                                vwin.pid)
            with ctx.Pool(1) as pool:
                alone = pool.apply(_load, (target, seconds, window, None))
                loaded = asyncio.run(_relay_beside_forms(pool, target, seconds, window,
                                                         beside))
                again = pool.apply(_load, (target, seconds, window, None))
        finally:
            vwin.stop()
    median = statistics.median(timing.times_ms)
    baseline = (alone["peak"] + again["peak"]) / 2
    loss = 1 - loaded["peak"] / baseline
    form_rows = [[f"present + sign, {len(timing.times_ms)} forms", median,
                  percentile(timing.times_ms, 90), max(timing.times_ms),
                  1000 * timing.worker_cpu_s / len(timing.times_ms),
                  percentile(timing.pings_ms, 50), percentile(timing.pings_ms, 99)]]
    relay_rows = [[name, r["peak"], f"{r['srv_cpu']:.0%}", r["p50"], r["p99"]]
                  for name, r in (("alone (before)", alone), ("beside forms", loaded),
                                  ("alone (after)", again))]
    load = os.getloadavg()[0]
    return (table(f"Forms: a two-page CJK form rendered and signed, workers at nice {nice}, "
                  f"load average {load:.1f}",
                  ["what", "median ms", "p90 ms", "max ms", "worker CPU ms/form",
                   "ping p50 ms", "ping p99 ms"],
                  form_rows)
            + f"\nmedian {median:.0f} ms (goal < {GOAL_MS:.0f} ms: "
              f"{'met' if median < GOAL_MS else 'MISSED'})\n\n"
            + table(f"Relay beside forms: {pairs} pairs, window {window}, {seconds:g} s per "
                    f"phase; {len(beside.times_ms)} forms signed during the middle run",
                    ["relay", "peak msg/s", "server CPU", "half-peak p50 ms",
                     "half-peak p99 ms"], relay_rows)
            + f"\nrelay throughput lost while forms render: {loss:.1%} of the mean alone "
              f"(goal <= {GOAL_LOSS:.0%}: {'met' if loss <= GOAL_LOSS else 'MISSED'})\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--forms", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--nice", type=int, default=10, help="[forms] nice of the workers")
    args = parser.parse_args()
    print(report(args.forms, args.pairs, args.seconds, args.window, args.nice))


if __name__ == "__main__":
    main()
