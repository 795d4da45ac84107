"""Relay cost, counted: what `vwin serve` spends per relayed `rtc.candidate`, for this
checkout and others (`--root`), alternated in one run, in figures a shared machine does
not blur.

The same closed loop as `bench.relay`'s peak phase (N pairs, `--window` messages in flight
per socket), for `--seconds` once warmed up, with the server:

- natively, `perf stat` attached for the window: system calls (all of them, and `sendto`:
  the socket writes) and CPU time (task-clock) per relayed message;
- with `--callgrind`, under `valgrind --tool=callgrind`, instrumenting only for the window:
  user-space instructions per relayed message (the kernel's side of a system call is not
  counted: read it with the system-call counts). Valgrind slows the server ~50 times, so
  each read brings more frames than at native speed: use a smaller window to compare.

`--compress 0 --compress 15`: each checkout with clients that do not and that do ask for
permessage-deflate (as browsers do).

    python -m bench.relay_cost --root /path/to/other/checkout [--root .] [--rounds 2]
        [--pairs 20] [--window 4] [--seconds 5] [--callgrind] [--compress 15 ...]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import aiohttp

from bench.common import (
    ROOT,
    VwinServer,
    raise_fd_limit,
    rss_kb,
    table,
    wait_healthy,
    workdir,
)
from bench.provision import provision
from bench.relay import Meter, _flood, _read
from bench.signalling import pair_calls

WARMUP_S = 2.0
CALLGRIND_START_S = 900.0  # imports and migrations under valgrind on a busy machine


class Server(VwinServer):
    """`vwin serve` of a checkout, natively or under callgrind (collecting nothing yet)."""

    def __init__(self, work: Path, root: Path, callgrind: bool) -> None:
        super().__init__(work, extra_toml="rate_per_s = 1000000\nrate_burst = 1000000\n",
                         root=root)
        self.callgrind = callgrind
        self.out = work / "callgrind.out"

    def spawn(self, cwd: Path, out: IO[bytes],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        prefix = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                  f"--callgrind-out-file={self.out}"] if self.callgrind else []
        python = sys.executable
        self.proc = subprocess.Popen(
            [*prefix, python, "-m", "server.cli", "serve", "--config", str(self.config)],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self.proc

    async def start(self) -> None:
        proc = self.spawn(self.root, (self.workdir / "server.log").open("wb"))
        await wait_healthy(self.url, proc, "vwin serve", self.log_tail,
                           CALLGRIND_START_S if self.callgrind else 120.0)


def _perf(pid: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["perf", "stat", "-x", ",", "-e",
         "syscalls:sys_enter_sendto,raw_syscalls:sys_enter,task-clock",
         "-p", str(pid), "--", "sleep", str(seconds)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _perf_counts(spy: subprocess.Popen[str]) -> dict[str, float]:
    _, err = spy.communicate()
    counts = {}
    for line in err.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[0].replace(".", "").isdigit():
            counts[fields[2]] = float(fields[0])
    return counts


def _callgrind(pid: int, *args: str) -> None:
    done = subprocess.run(["callgrind_control", *args, str(pid)], check=True,
                          capture_output=True, text=True)
    if "OK" not in done.stdout:
        raise RuntimeError(f"callgrind_control {' '.join(args)}: {done.stdout}{done.stderr}")


def _instructions(out: Path) -> int:
    """Instructions in the dumps callgrind wrote (`-z` then `-d`: the window's only)."""
    total = 0
    for path in sorted(out.parent.glob(out.name + ".*")):
        text = path.read_text(errors="replace")
        found = re.search(r"^summary:\s*(\d+)", text, re.MULTILINE)
        if found:
            total += int(found.group(1))
        keep = os.environ.get("RELAY_COST_KEEP")  # a folder to look at the dumps afterwards
        if keep:
            (Path(keep) / f"{out.parent.name}-{path.name}").write_text(text)
    return total


async def _run(root: Path, pairs: int, window: int, seconds: float, callgrind: bool,
               compress: int) -> dict[str, Any]:
    with workdir("vwin-relay-cost-") as work:
        server = Server(work, root, callgrind)
        accounts = await provision(server.db_url, pairs, pairs)
        await server.start()
        try:
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0)) as http:
                legs = [leg for pair in await pair_calls(
                    http, server.url + "/ws", list(accounts.terminals.values()),
                    list(accounts.specialists.values()), compress=compress) for leg in pair]
                credits = {leg.me: asyncio.Semaphore(window) for leg in legs}
                meter = Meter()
                tasks = [asyncio.create_task(_read(leg, credits[leg.peer], meter))
                         for leg in legs]
                tasks += [asyncio.create_task(_flood(leg, credits[leg.me])) for leg in legs]
                await asyncio.sleep(WARMUP_S * (10 if callgrind else 1))
                if callgrind:  # instrument (slower still), start counting from zero
                    await asyncio.to_thread(_callgrind, server.pid, "-i", "on")
                    await asyncio.sleep(seconds / 2)  # the new pace settles
                    await asyncio.to_thread(_callgrind, server.pid, "-z")
                    start = meter.count
                    await asyncio.sleep(seconds)
                    await asyncio.to_thread(_callgrind, server.pid, "-d")
                    relayed = meter.count - start
                    await asyncio.to_thread(_callgrind, server.pid, "-i", "off")
                    counts: dict[str, float] = {}
                else:
                    spy, start = _perf(server.pid, seconds), meter.count
                    counts = await asyncio.to_thread(_perf_counts, spy)
                    relayed = meter.count - start
                rss_mb = rss_kb(server.pid) / 1024
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                for leg in legs:
                    await leg.ws.close()
        finally:
            server.stop()
        result: dict[str, Any] = {"relayed": relayed, "rss_mb": rss_mb}
        if callgrind:
            result["instr"] = _instructions(server.out) / max(relayed, 1)
        else:
            result["sendto"] = counts.get("syscalls:sys_enter_sendto", 0) / max(relayed, 1)
            result["syscalls"] = counts.get("raw_syscalls:sys_enter", 0) / max(relayed, 1)
            result["cpu_us"] = counts.get("task-clock", 0) * 1e3 / max(relayed, 1)  # ms -> µs
        return result


def report(roots: list[Path], rounds: int, pairs: int, window: int, seconds: float,
           callgrind: bool, compress: list[int]) -> str:
    raise_fd_limit()
    rows = []
    for n in range(rounds):
        for root, bits in [(root, bits) for root in roots for bits in compress]:
            r = asyncio.run(_run(root, pairs, window, seconds, callgrind, bits))
            figures = ([f"{r['instr']:,.0f}"] if callgrind else
                       [f"{r['sendto']:.3f}", f"{r['syscalls']:.3f}", f"{r['cpu_us']:.2f}"])
            rows.append([n + 1, str(root), bits or "-", r["relayed"], *figures,
                         f"{r['rss_mb']:.0f}", f"{os.getloadavg()[0]:.1f}"])
    header = (["round", "checkout", "deflate", "relayed"]
              + (["instructions/msg"] if callgrind else
                 ["sendto/msg", "syscalls/msg", "CPU µs/msg"]) + ["RSS MB", "load average"])
    how = "callgrind" if callgrind else "perf stat"
    return table(f"Relay cost ({how}): {pairs} pairs, window {window}, {seconds:g} s",
                 header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, action="append",
                        help="a checkout whose server to measure (repeat; default: this one)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--window", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--compress", type=int, action="append", metavar="BITS",
                        help="clients ask for permessage-deflate (15: as browsers do); "
                             "repeat with 0 to compare (default: 0)")
    args = parser.parse_args()
    roots = [root.resolve() for root in args.root or [ROOT]]
    print(report(roots, args.rounds, args.pairs, args.window, args.seconds, args.callgrind,
                 args.compress or [0]))


if __name__ == "__main__":
    main()
