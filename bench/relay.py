"""Relay: `rtc.candidate` messages through `vwin serve` against a bare aiohttp relay.

Both servers run in their own processes; the load generator runs in a third
(multiprocessing), so each server has a core to itself while it is measured,
one server at a time, same client code, same run. N pairs (terminal +
specialist in connected calls through vwin; two named sockets on the bare
relay) send browser-sized `rtc.candidate` frames to each other, both ways.

- peak: each socket keeps `--window` messages in flight to its peer (closed
  loop): received messages/s once warmed up;
- half: messages paced at half of that server's own peak (open loop):
  latency from send to receipt (one clock: both ends are in the load process).

Goal (issue 10): vwin >= 80 % of the bare relay's peak, p99 < 20 ms at half of peak.
vwin runs with its per-connection rate limit lifted (the bench measures the
relay, not the abuse guard, which would cap each socket at 50 msg/s).

`--compress 15` has every client ask for permessage-deflate, as browsers do (both
servers accept it): what compression costs the servers per message.

    python -m bench.relay [--pairs 100] [--seconds 5] [--window 8] [--compress 15]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.bare_relay import serve as serve_bare
from bench.common import (
    VwinServer,
    cpu_seconds,
    free_port,
    hot_spots,
    percentile,
    profile,
    raise_fd_limit,
    rss_kb,
    table,
    workdir,
)
from bench.provision import provision
from bench.signalling import Leg, hello, pair_calls

CANDIDATE = (
    '{"type":"rtc.candidate","call_id":"%s","to":"%s","candidate":{"candidate":"candidate:%%d '
    '1 udp 2122260223 192.168.1.23 54321 typ host generation 0 ufrag Xy9z network-id 1",'
    '"sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"Xy9z"}}')
WARMUP_S = 1.0
PACE_S = 0.005  # open-loop sending tick
GOAL_RATIO = 0.80
GOAL_P99_MS = 20.0


@dataclass
class Target:
    name: str
    url: str
    pid: int
    terminals: list[str]
    specialists: list[str]
    specialist_url: str = ""  # another node for the specialists (bench.cluster); "" = `url`
    more_pids: tuple[int, ...] = ()  # other server processes whose CPU counts too


def _server_cpu(target: Target) -> float:
    return sum(cpu_seconds(pid) for pid in (target.pid, *target.more_pids))


class Meter:
    """Counts received candidates; records send-to-receipt latency while `recording`."""

    def __init__(self) -> None:
        self.count = 0
        self.recording = False
        self.latencies_ms: list[float] = []

    def got(self, data: str) -> bool:
        start = data.find('"candidate:')
        if start < 0:
            return False
        self.count += 1
        if self.recording:
            sent = int(data[start + 11:data.index(" ", start)])
            self.latencies_ms.append((time.perf_counter_ns() - sent) / 1e6)
        return True


async def _read(leg: Leg, peer_credit: asyncio.Semaphore, meter: Meter) -> None:
    async for frame in leg.ws:
        if frame.type != aiohttp.WSMsgType.TEXT:
            return
        if meter.got(frame.data):
            peer_credit.release()


async def _flood(leg: Leg, credit: asyncio.Semaphore) -> None:
    template = CANDIDATE % (leg.call_id, leg.peer)
    while True:
        await credit.acquire()
        await leg.ws.send_str(template % time.perf_counter_ns())


async def _pace(legs: list[Leg], rate: float, seconds: float) -> None:
    templates = [CANDIDATE % (leg.call_id, leg.peer) for leg in legs]
    start, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(int(rate * elapsed) - sent):
            i = sent % len(legs)
            await legs[i].ws.send_str(templates[i] % time.perf_counter_ns())
            sent += 1
        await asyncio.sleep(PACE_S)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(target: Target, seconds: float, window: int,
                   profile_dir: Path | None, compress: int = 0) -> dict[str, Any]:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        url = target.url + "/ws"
        if target.name == "bare":
            legs = []
            for i in range(len(target.terminals)):
                a, b = f"a{i}", f"b{i}"
                legs += [Leg((await hello(http, url, a, compress))[0], a, b, "c"),
                         Leg((await hello(http, url, b, compress))[0], b, a, "c")]
        else:
            legs = [leg for pair in await pair_calls(
                http, url, target.terminals, target.specialists,
                specialist_url=target.specialist_url and target.specialist_url + "/ws",
                compress=compress)
                for leg in pair]
        credits = {leg.me: asyncio.Semaphore(window) for leg in legs}
        meter = Meter()
        readers = [asyncio.create_task(_read(leg, credits[leg.peer], meter)) for leg in legs]
        floods = [asyncio.create_task(_flood(leg, credits[leg.me])) for leg in legs]
        await asyncio.sleep(WARMUP_S)
        spy = profile(target.pid, seconds, profile_dir / f"{target.name}.txt") \
            if profile_dir else None
        count, cpu_srv, cpu_me, t0 = meter.count, _server_cpu(target), _cpu_self(), \
            time.perf_counter()
        await asyncio.sleep(seconds)
        elapsed = time.perf_counter() - t0
        peak = (meter.count - count) / elapsed
        result: dict[str, Any] = {
            "peak": peak, "srv_cpu": (_server_cpu(target) - cpu_srv) / elapsed,
            "load_cpu": (_cpu_self() - cpu_me) / elapsed, "rss_mb": rss_kb(target.pid) / 1024}
        if spy is not None:
            spy.wait()
        for task in floods:
            task.cancel()
        await asyncio.gather(*floods, return_exceptions=True)
        await asyncio.sleep(0.5)  # let the in-flight window drain
        await _pace(legs, peak / 2, WARMUP_S)
        meter.recording = True
        await _pace(legs, peak / 2, seconds)
        await asyncio.sleep(0.2)
        meter.recording = False
        lat = meter.latencies_ms
        result.update(rate=peak / 2, received=len(lat), p50=percentile(lat, 50),
                      p99=percentile(lat, 99), max=max(lat, default=float("nan")))
        for leg in legs:
            await leg.ws.close()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return result


def _load(target: Target, seconds: float, window: int,
          profile_dir: Path | None, compress: int = 0) -> dict[str, Any]:
    """The load generator's process."""
    raise_fd_limit()
    return asyncio.run(_measure(target, seconds, window, profile_dir, compress))


async def _start(pairs: int, work: Any) -> tuple[VwinServer, Target]:
    vwin = VwinServer(work, extra_toml="rate_per_s = 1000000\nrate_burst = 1000000\n")
    accounts = await provision(vwin.db_url, pairs, pairs)
    await vwin.start()
    return vwin, Target("vwin", vwin.url, vwin.pid, list(accounts.terminals.values()),
                        list(accounts.specialists.values()))


def report(pairs: int, seconds: float, window: int, profile_dir: Path | None = None,
           compress: int = 0) -> str:
    raise_fd_limit()
    ctx = mp.get_context("spawn")
    bare_port = free_port()
    bare = ctx.Process(target=serve_bare, args=(bare_port,), daemon=True)
    bare.start()
    results: dict[str, dict[str, Any]] = {}
    with workdir("vwin-relay-") as work:
        vwin, vwin_target = asyncio.run(_start(pairs, work))
        try:
            assert bare.pid is not None
            bare_target = Target("bare", f"http://127.0.0.1:{bare_port}", bare.pid,
                                 vwin_target.terminals, vwin_target.specialists)
            asyncio.run(_wait_listening(bare_target.url))
            with ctx.Pool(1) as pool:
                for target in (bare_target, vwin_target):
                    results[target.name] = pool.apply(
                        _load, (target, seconds, window, profile_dir, compress))
        finally:
            vwin.stop()
            bare.terminate()
            bare.join()
    rows = [[name, r["peak"], f"{r['srv_cpu']:.0%}", _cpu_us(r), f"{r['load_cpu']:.0%}",
             r["rate"], r["p50"], r["p99"], r["max"], f"{r['rss_mb']:.0f}"]
            for name, r in results.items()]
    ratio = results["vwin"]["peak"] / results["bare"]["peak"]
    cpu_ratio = _cpu_us(results["bare"]) / _cpu_us(results["vwin"])
    p99 = results["vwin"]["p99"]
    deflate = f", permessage-deflate {compress}" if compress else ""
    return (table(f"Relay: {pairs} pairs ({2 * pairs} sockets), window {window}, "
                  f"{seconds:g} s per phase{deflate}, load average {os.getloadavg()[0]:.1f}",
                  ["server", "peak msg/s", "server CPU", "CPU µs/msg", "load CPU",
                   "half-peak msg/s",
                   "p50 ms", "p99 ms", "max ms", "RSS MB"], rows)
            + f"\nvwin / bare throughput: {ratio:.0%} (goal >= {GOAL_RATIO:.0%}: "
              f"{'met' if ratio >= GOAL_RATIO else 'MISSED'}); vwin p99 at half of peak "
              f"{p99:.1f} ms (goal < {GOAL_P99_MS:.0f} ms: "
              f"{'met' if p99 < GOAL_P99_MS else 'MISSED'})\n"
              f"server CPU per message, bare / vwin: {cpu_ratio:.0%} (what the throughput "
              f"ratio would be with a core each: read this one on a loaded machine)\n")


def _cpu_us(result: dict[str, Any]) -> float:
    """The server's CPU time per relayed message at peak, in microseconds."""
    return float(result["srv_cpu"] / result["peak"] * 1e6)


async def _wait_listening(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            try:
                ws = await http.ws_connect(url + "/ws")
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
                continue
            await ws.close()
            return
    raise RuntimeError("the bare relay did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--compress", type=int, default=0, metavar="BITS",
                        help="clients ask for permessage-deflate (15: as browsers do)")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy both servers during the peak phase; print their hot spots")
    args = parser.parse_args()
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    print(report(args.pairs, args.seconds, args.window, args.profile, args.compress))
    if args.profile:
        for name in ("bare", "vwin"):
            print(f"#### hot spots of {name} at peak (inclusive share of samples)\n")
            print(hot_spots(args.profile / f"{name}.txt") + "\n")


if __name__ == "__main__":
    main()
