"""The bench day's watch on its processes (RSS, CPU) and its faults.

RSS is sampled every quarter of a simulated hour from /proc. The slope (issue 16: "under
1 MB per simulated hour after the first") is the least-squares line through the samples
of a process's latest life (a node killed and restarted, a replacement recorder, starts
a new one) from the end of that life's first simulated hour to closing time: the first
hour is the warm-up (imports, pools, caches, allocator arenas filling), the drain after
closing is not a working hour. A life with fewer than `MIN_POINTS` samples there (a
recorder that joined late in a short day) has no slope ("—"). CPU is the sum over a
process's lives, as a share of one core over the wall time it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from bench.common import cpu_seconds, rss_kb
from bench.day_plan import DAY_START_H, PEAKS_H, Clock
from bench.day_setup import Service

SAMPLES_PER_HOUR = 4
WARMUP_H = 1.0  # a life's first simulated hour is not in its slope
MIN_POINTS = 3  # half a simulated hour of samples at least
NEAREST_H = 0.5 / SAMPLES_PER_HOUR  # a sample this close to a bound counts (sampling drifts late)
SLOPE_GOAL_MB_H = 1.0  # issue 16, for the servers (nodes and recorders)
SERVERS = ("node", "rec")
SETTLED_S = 2.0  # after a fault's recovery, latency counts again this much later


@dataclass
class Life:
    pid: int
    started: float
    rss: list[tuple[float, int]] = field(default_factory=list)  # (simulated hour, kB)
    cpu_s: float = 0.0


class Monitor:
    def __init__(self, service: Service, loads: dict[str, int], clock: Clock) -> None:
        self.service, self.loads, self.clock = service, loads, clock
        self.lives: dict[str, list[Life]] = {}

    def pids(self) -> dict[str, int]:
        found = dict(self.loads)
        for node in self.service.nodes:
            if node.proc is not None and node.proc.poll() is None:
                found[node.name] = node.pid
        for recorder in self.service.recorders:
            if recorder.alive():
                found[recorder.name] = recorder.pid
        redis = self.service.redis
        if redis is not None and redis.proc is not None and redis.proc.poll() is None:
            found["redis"] = redis.proc.pid
        return found

    def sample(self) -> None:
        hour = self.clock.hour(time.time()) - DAY_START_H
        for name, pid in self.pids().items():
            lives = self.lives.setdefault(name, [])
            if not lives or lives[-1].pid != pid:
                lives.append(Life(pid, time.time()))
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                lives[-1].rss.append((hour, rss_kb(pid)))
                lives[-1].cpu_s = cpu_seconds(pid)

    def sample_cpu(self) -> None:
        self.sample()

    async def run(self, until: float) -> None:
        step = self.clock.real(3600 / SAMPLES_PER_HOUR)
        while time.time() < until:
            self.sample()
            await asyncio.sleep(step)

    def describe(self) -> str:
        lines = ["RSS per process (MB) at each simulated hour (after the last: the drain), "
                 "slope from the end of the first hour of its latest life to closing (MB per "
                 f"simulated hour; goal for the servers < {SLOPE_GOAL_MB_H:g}), CPU (share of "
                 "one core while it ran):"]
        for name, lives in sorted(self.lives.items()):
            life = lives[-1]
            hourly: dict[int, float] = {}
            for hour, kb in life.rss:
                hourly.setdefault(round(hour), kb / 1024)
            slope = life_slope(life, self.clock.hours)
            verdict = "" if slope is None or not name.startswith(SERVERS) else (
                " met" if slope < SLOPE_GOAL_MB_H else " MISSED")
            ran = sum(max(1e-9, (lf.rss[-1][0] - lf.rss[0][0]) if lf.rss else 0.0)
                      for lf in lives) * 3600 / self.clock.speed
            cpu = sum(lf.cpu_s for lf in lives)
            shown = " ".join(f"h{h}:{mb:.0f}" for h, mb in sorted(hourly.items()))
            lines.append(f"  {name:8} lives {len(lives)}  {shown}  slope "
                         f"{'—' if slope is None else f'{slope:+.2f}'}{verdict}  CPU "
                         f"{cpu:.1f} s ({cpu / max(ran, 1e-9):.0%})")
        return "\n".join(lines)


def life_slope(life: Life, hours: float) -> float | None:
    """MB per simulated hour after the life's first hour, up to closing (`hours`)."""
    if not life.rss:
        return None
    since = max(0.0, life.rss[0][0]) + WARMUP_H
    points = [(h, kb / 1024) for h, kb in life.rss
              if since - NEAREST_H <= h <= hours + NEAREST_H]
    return _slope(points) if len(points) >= MIN_POINTS else None


def _slope(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / var


@dataclass
class Fault:
    name: str
    started: float
    recovered: float = 0.0
    note: str = ""


class Faults:
    """Each fault at its simulated time; `during(t)` tells the latency figures apart."""

    def __init__(self, service: Service, clock: Clock) -> None:
        self.service, self.clock = service, clock
        self.done: list[Fault] = []

    def during(self, t: float) -> bool:
        return any(f.started <= t <= f.recovered + SETTLED_S for f in self.done)

    def overlaps(self, start: float, end: float) -> bool:
        """Whether a fault's seconds (recovery and `SETTLED_S` included) touch [start, end]
        (a fault still under way counts to now)."""
        return any(f.started <= end and start <= (f.recovered or time.time()) + SETTLED_S
                   for f in self.done)

    async def _at(self, day_share: float) -> None:
        hour = DAY_START_H + day_share * self.clock.hours
        await asyncio.sleep(max(0.0, self.clock.at(hour) - time.time()))

    async def run(self) -> None:
        nodes = self.service.nodes
        await asyncio.sleep(max(0.0, self.clock.at(PEAKS_H[0]) - time.time()))
        fault = self._begin("node killed (SIGKILL) mid-peak and restarted")
        victim = nodes[0]
        victim.kill9()
        await asyncio.sleep(self.clock.real(120))  # two simulated minutes down
        victim.start()
        await victim.serving()
        self._end(fault)
        await self._at(0.45)
        fault = self._begin("recorder killed (SIGKILL) and replaced")
        lost = self.service.recorders.pop(0)
        lost.kill9()
        self.service.retired.append(lost)
        await self.service.add_recorder(f"{lost.name}b", nodes[-1])
        self._end(fault)
        if self.service.redis is not None:
            await self._at(0.6)
            fault = self._begin("Redis restarted (AOF)")
            self.service.redis.restart()
            for node in nodes:
                await node.serving()
            self._end(fault)
        if self.service.pg is not None:
            await self._at(0.8)
            fault = self._begin("PostgreSQL connection storm")
            killed = await self.service.pg.storm()
            fault.note = f"{killed} connections terminated"
            for node in nodes:
                await node.serving()
            self._end(fault)

    def _begin(self, name: str) -> Fault:
        fault = Fault(name, time.time())
        self.done.append(fault)
        return fault

    def _end(self, fault: Fault) -> None:
        fault.recovered = time.time()

    def describe(self) -> str:
        if not self.done:
            return "faults: none"
        return "faults: " + "; ".join(
            f"{f.name} at h{self.clock.hour(f.started):.2f}, back in "
            f"{f.recovered - f.started:.1f} s{' (' + f.note + ')' if f.note else ''}"
            for f in self.done)
