"""The bench day's watch on its processes (RSS, CPU) and its faults.

RSS is sampled every quarter of a simulated hour from /proc, and each server's load beside
it: a node's WebSockets every 2 s real (bench.day_latency.Scrapes, its `/metrics`), a
recorder's open segments (the parties whose media it is writing: a session without media
costs it nothing) from the catalog's rows after the day (`segments_held`). Issue 16 asks
for "under 1 MB per simulated hour after the first": RSS that keeps growing at a steady
load is a leak; RSS that rises with the load a process takes on is not, and a life that
starts mid-day (a node killed and restarted, a replacement recorder) takes its load on
later, in steps nobody controls (kiosks returning to a restarted node one by one as their
sockets drop; a new recorder given the new calls until it holds as many as the others).
Three least-squares lines are fitted through the samples of a process's latest life, up to
closing time (the drain after closing is not a working hour):

- at steady load (the verdict): from the later of the end of the life's first simulated
  hour (imports, pools, caches, allocator arenas filling) and the first moment its load
  reached `STEADY_SHARE` of the highest it reaches before closing. From there the load
  grows by less than a tenth, so growth of RSS is growth at a steady load: a leak per call,
  per reconnect or per hour still shows, a high-water mark of sockets or segments does not.
  A window shorter than `MIN_STEADY_H` (the load rose until closing) has no steady slope
  and the verdict falls back to the next line, marked;
- after the life's first hour (the rule before the load was sampled);
- over the whole life, its first hour included: warm-up, fill-up and any leak together, so
  that no rule hides a rise.

A line with fewer than `MIN_POINTS` samples has no slope ("—"). CPU is the sum over a
process's lives, as a share of one core over the wall time it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bench.common import cpu_seconds, rss_kb
from bench.day_plan import DAY_START_H, PEAKS_H, Clock
from bench.day_setup import Service

SAMPLES_PER_HOUR = 4
WARMUP_H = 1.0  # a life's first simulated hour is not in its slope
MIN_POINTS = 3  # half a simulated hour of samples at least
NEAREST_H = 0.5 / SAMPLES_PER_HOUR  # a sample this close to a bound counts (sampling drifts late)
SLOPE_GOAL_MB_H = 1.0  # issue 16, for the servers (nodes and recorders)
STEADY_SHARE = 0.9  # a life's load is steady once it reached this share of its highest
MIN_STEADY_H = 1.0  # a steady window shorter than this proves nothing either way
SERVERS = ("node", "rec")
SETTLED_S = 2.0  # after a fault's recovery, latency counts again this much later


@dataclass
class Life:
    pid: int
    started: float
    rss: list[tuple[float, int]] = field(default_factory=list)  # (simulated hour, kB)
    cpu_s: float = 0.0


Load = list[tuple[float, float]]  # (wall-clock time, sockets or open segments held)


@dataclass
class Fits:
    """The slopes of one life (MB per simulated hour; module doc); None: too few samples."""

    steady: float | None
    steady_from: float | None  # simulated hour since the day's start
    after_first: float | None
    whole: float | None

    @property
    def verdict(self) -> float | None:
        return self.steady if self.steady is not None else self.after_first


class Monitor:
    def __init__(self, service: Service, loads: dict[str, int], clock: Clock) -> None:
        self.service, self.loads, self.clock = service, loads, clock
        self.lives: dict[str, list[Life]] = {}
        self.held: dict[str, Load] = {}  # by process name (module doc)

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
        lines = ["RSS per process (MB) at each simulated hour (after the last: the drain); "
                 "slope of its latest life up to closing, MB per simulated hour (goal for the "
                 f"servers < {SLOPE_GOAL_MB_H:g}), at steady load (from when its sockets or "
                 f"open segments reached {STEADY_SHARE:.0%} of their highest, and after its "
                 "first hour), then after its first hour and over its whole life "
                 "(bench.day_monitor); CPU (share of one core while it ran):"]
        for name, lives in sorted(self.lives.items()):
            life = lives[-1]
            hourly: dict[int, float] = {}
            for hour, kb in life.rss:
                hourly.setdefault(round(hour), kb / 1024)
            held = [(self.clock.hour(t) - DAY_START_H, n) for t, n in self.held.get(name, [])
                    if t >= life.started]
            fits = life_fits(life, self.clock.hours, held)
            ran = sum(max(1e-9, (lf.rss[-1][0] - lf.rss[0][0]) if lf.rss else 0.0)
                      for lf in lives) * 3600 / self.clock.speed
            cpu = sum(lf.cpu_s for lf in lives)
            shown = " ".join(f"h{h}:{mb:.0f}" for h, mb in sorted(hourly.items()))
            lines.append(f"  {name:8} lives {len(lives)}  {shown}  slope "
                         f"{_fits_text(name, fits, held)}  CPU {cpu:.1f} s "
                         f"({cpu / max(ran, 1e-9):.0%})")
        return "\n".join(lines)


def _fits_text(name: str, fits: Fits, held: Load) -> str:
    def shown(slope: float | None) -> str:
        return "—" if slope is None else f"{slope:+.2f}"

    verdict = fits.verdict
    said = "" if verdict is None or not name.startswith(SERVERS) else (
        " met" if verdict < SLOPE_GOAL_MB_H else " MISSED")
    if fits.steady is not None and fits.steady_from is not None:
        peak = max((n for _, n in held), default=0.0)
        head = (f"{shown(fits.steady)}{said} (steady load from h{fits.steady_from:.1f}, "
                f"highest {peak:.0f} held)")
    elif held:
        head = f"{shown(fits.after_first)}{said} (load rising to closing: after the first hour)"
    else:
        head = f"{shown(fits.after_first)}{said} (load not sampled: after the first hour)"
    return (f"{head}; after the first hour {shown(fits.after_first)}, whole life "
            f"{shown(fits.whole)}")


def segments_held(segments: Iterable[dict[str, Any]]) -> dict[str, Load]:
    """Each recorder's open segments over time, from the catalog's rows (opened when the node
    took `record.segment`, ended when it took the manifest or gave the recorder up)."""
    changes: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for seg in segments:
        changes[seg["recorder"]].append((seg["created_at"].timestamp(), 1))
        if seg["ended_at"] is not None:
            changes[seg["recorder"]].append((seg["ended_at"].timestamp(), -1))
    out: dict[str, Load] = {}
    for name, steps in changes.items():
        open_now, out[name] = 0, []
        for at, step in sorted(steps):
            open_now += step
            out[name].append((at, float(open_now)))
    return out


def life_slope(life: Life, hours: float) -> float | None:
    """MB per simulated hour after the life's first hour, up to closing (`hours`)."""
    if not life.rss:
        return None
    return _fit(life, max(0.0, life.rss[0][0]) + WARMUP_H, hours)


def life_fits(life: Life, hours: float, held: list[tuple[float, float]]) -> Fits:
    """The three slopes of the module doc; `held` is the life's load by simulated hour."""
    if not life.rss:
        return Fits(None, None, None, None)
    born = max(0.0, life.rss[0][0])
    steady_from = steady_since(held, hours)
    steady = None
    if steady_from is not None:
        steady_from = max(steady_from, born + WARMUP_H)
        if hours - steady_from >= MIN_STEADY_H - NEAREST_H:
            steady = _fit(life, steady_from, hours)
    return Fits(steady, steady_from if steady is not None else None,
                _fit(life, born + WARMUP_H, hours), _fit(life, born, hours))


def steady_since(held: list[tuple[float, float]], hours: float) -> float | None:
    """The first simulated hour at which the load reached `STEADY_SHARE` of the highest it
    reaches up to closing (`hours`); None without samples."""
    kept = [(h, n) for h, n in held if h <= hours + NEAREST_H]
    if not kept:
        return None
    peak = max(n for _, n in kept)
    return min(h for h, n in kept if n >= STEADY_SHARE * peak)


def _fit(life: Life, since: float, hours: float) -> float | None:
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
