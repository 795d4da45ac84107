"""What every benchmark shares: a `vwin serve` subprocess, /proc readings, tables.

Figures are read from /proc (no psutil): RSS from `/proc/PID/status`, CPU
time from `/proc/PID/stat`, so the scripts run on any Linux with the
project's own dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
START_TIMEOUT_S = 60.0  # a cold start with migrations on a busy machine


def raise_fd_limit() -> int:
    """Lift the soft open-files limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_toml(port: int, node_id: str) -> str:
    """The `[server]` table every benchmark's `vwin serve` starts from, on loopback."""
    return f'[server]\nhost = "127.0.0.1"\nport = {port}\nnode_id = "{node_id}"\n'


async def wait_healthy(url: str, proc: subprocess.Popen[bytes] | None, name: str,
                       tail: Callable[[], str], timeout: float) -> None:
    """Until `url`/healthz answers 200; the log's tail in the error if it exits or never does."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if proc is None or proc.poll() is not None:
                raise RuntimeError(f"{name} exited: {tail()}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(url + "/healthz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{name} did not answer /healthz: {tail()}")


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and SIGKILL when it has not exited within 15 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def add_roots(parser: argparse.ArgumentParser) -> None:
    """`--root`: checkouts to measure in turn in one run (`alternated`)."""
    parser.add_argument("--root", type=Path, action="append",
                        help="a checkout to measure (repeat to compare, alternated; "
                             "default: this one)")


def alternated(roots: list[Path] | None, rounds: int) -> Iterator[tuple[int, Path]]:
    """(round, checkout) for each round and each `--root` in turn: the baseline in the same
    run, under the same conditions as the machine's load drifts."""
    resolved = [r.resolve() for r in roots or [ROOT]]
    for n in range(rounds):
        for root in resolved:
            yield n, root


def spin() -> None:
    """A process's whole work: a CPU kept busy (`--hogs`, the other processes of a busy
    machine)."""
    while True:
        pass


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, also valid Markdown, so it can be pasted into docs/benchmarks.md."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [f"### {title}", ""]
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines) + "\n"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class ServeProcess:
    """A `vwin serve` child on a free loopback port, started from its TOML config."""

    def __init__(self, config: Path) -> None:
        self.port = free_port()
        self.config = config
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def spawn(self, cwd: Path, out: IO[bytes],
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server.cli", "serve", "--config", str(self.config)],
            cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self.proc


class VwinServer(ServeProcess):
    """`vwin serve` in its own process, on a free port, with a temporary SQLite database."""

    def __init__(self, workdir: Path, extra_toml: str = "", root: Path = ROOT) -> None:
        super().__init__(workdir / "bench.toml")
        self.workdir = workdir
        self.root = root  # another checkout's server, to compare versions in one run
        self.db_url = f"sqlite+aiosqlite:///{workdir / 'vwin.db'}"
        self.config.write_text(
            server_toml(self.port, "bench")
            + f"{extra_toml}\n[storage]\nurl = \"{self.db_url}\"\n"
            # every load generator is on loopback: lift the per-address socket caps
            "[limits]\nws_per_address = 1000000\nunauthenticated_per_address = 1000000\n")

    async def start(self) -> None:
        with (self.workdir / "server.log").open("wb") as log:  # the child has its own copy
            proc = self.spawn(self.root, log)
        await wait_healthy(self.url, proc, "vwin serve", self.log_tail, START_TIMEOUT_S)

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "server.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        stop_process(self.proc)


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


def profile(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Sample `pid` with py-spy for `seconds` (raw folded stacks), if py-spy is installed."""
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return None
    return subprocess.Popen(
        [str(spy), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
         "--rate", "200", "--nonblocking", "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def hot_spots(folded: Path, top: int = 25) -> str:
    """Share of samples in which each function appears (inclusive), from py-spy's raw output."""
    counts: dict[str, int] = {}
    total = 0
    for line in folded.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        total += int(n)
        for frame in set(stack.split(";")):
            counts[frame] = counts.get(frame, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:top]
    return "\n".join(f"{100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in ranked)
