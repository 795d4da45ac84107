"""The bench day's signalling latency taken apart: the service's own, each process's queue.

What a party measures (request->queued, accept->connected, hangup->ended, in its ledger)
is the service's time plus the waits of the measuring process's own event loop. Beside
it the day now keeps:

- the nodes' own handling time, `vwin_message_handle_seconds` by message type, and
  their event loops' lag, `vwin_event_loop_lag_seconds` (docs/operations.md), scraped
  from every node's `/metrics` each `SCRAPE_S` by `Scrapes`: the difference of two
  scrapes of one process is the histogram of that interval, counted when the interval
  touches no fault (a restarted node's counters start again from 0: its first scrape is
  taken whole);
- each load process's loop lag, sampled the same way (`server.metrics.watch_loop_lag`)
  into its ledger (`lag` rows, bench.day_worker).

A histogram's percentiles are interpolated within the bucket, as Prometheus'
`histogram_quantile` does: read "p99 12 ms" as "between the bucket's bounds, 12 by
linear interpolation".
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bench.common import percentile
from bench.day_plan import PROBE_EVERY_S
from bench.day_setup import Service

SCRAPE_S = 2.0  # real seconds between two scrapes of every node
HANDLE = "vwin_message_handle_seconds"
LAG = "vwin_event_loop_lag_seconds"
APPEND = "vwin_session_log_append_seconds"
WAIT = "vwin_step_wait_seconds"  # by kind of wait: a routing script, a store call
WAITS_SHOWN = 8  # the kinds of wait with the most time in them
STEPS = ("call.request", "call.accept", "call.hangup")  # the ledger's three steps
GOAL_MS = 50.0  # issue 16: p99 signalling latency outside the fault seconds
LAG_GOAL_MS = GOAL_MS  # a loop lagging longer delays any message as much

Buckets = dict[float, float]  # upper bound (s) -> cumulative count
CONNECTIONS = "vwin_websocket_connections"  # a node's load (bench.day_monitor)


@dataclass
class Interval:
    """One node's histograms between two scrapes (counts in the interval)."""

    node: str
    start: float
    end: float
    hists: dict[tuple[str, str], Buckets]  # (metric, type label or "") -> buckets


def histograms(text: str) -> dict[tuple[str, str], Buckets]:
    """The cumulative buckets of the handle and lag histograms in an exposition."""
    out: dict[tuple[str, str], Buckets] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        if family.name not in (HANDLE, LAG, APPEND, WAIT):
            continue
        for s in family.samples:
            if s.name.endswith("_bucket"):
                label = s.labels.get("type") or s.labels.get("wait", "")
                out[(family.name, label)][float(s.labels["le"])] = s.value
    return dict(out)


def held(text: str) -> float | None:
    """A node's load in its exposition: its WebSockets (every role, and those in `hello`)."""
    for family in text_string_to_metric_families(text):
        if family.name == CONNECTIONS:
            return sum(s.value for s in family.samples)
    return None


def _minus(now: dict[tuple[str, str], Buckets], before: dict[tuple[str, str], Buckets]
           ) -> dict[tuple[str, str], Buckets]:
    """`now - before`, or `now` whole when the process started again (a count went back)."""
    restarted = any(now.get(k, {}).get(le, 0.0) < v
                    for k, bs in before.items() for le, v in bs.items())
    if restarted:
        return now
    return {k: {le: v - before.get(k, {}).get(le, 0.0) for le, v in bs.items()}
            for k, bs in now.items()}


def quantile(buckets: Buckets, q: float) -> float:
    """Seconds at quantile q (0..1) of cumulative buckets, interpolated within the bucket."""
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower  # beyond the last bound: at least that
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower


def over(buckets: Buckets, seconds: float) -> float:
    """The share of observations above `seconds` (a bucket bound)."""
    total = buckets.get(float("inf"), 0.0)
    return (total - buckets.get(seconds, total)) / total if total else float("nan")


def _add(into: Buckets, more: Buckets) -> None:
    for le, v in more.items():
        into[le] = into.get(le, 0.0) + v


class Scrapes:
    """Every node's `/metrics` each `SCRAPE_S`, kept as intervals (module doc)."""

    def __init__(self, service: Service,
                 loads: dict[str, list[tuple[float, float]]] | None = None) -> None:
        self.service = service
        self.loads = {} if loads is None else loads  # node name -> (time, sockets held)
        self.intervals: list[Interval] = []
        self._last: dict[str, tuple[float, dict[tuple[str, str], Buckets]]] = {}

    async def run(self, until: float) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while time.time() < until:
                await asyncio.gather(*(self._scrape(http, node.name, node.url)
                                       for node in self.service.nodes))
                await asyncio.sleep(SCRAPE_S)

    async def _scrape(self, http: aiohttp.ClientSession, name: str, url: str) -> None:
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError, ValueError):
            async with http.get(url + "/metrics") as resp:
                if resp.status != 200:
                    return
                text, now = await resp.text(), time.time()
            now_hists = histograms(text)
            sockets = held(text)
            if sockets is not None:
                self.loads.setdefault(name, []).append((now, sockets))
            before = self._last.get(name)
            self._last[name] = (now, now_hists)
            if before is not None:
                self.intervals.append(Interval(name, before[0], now,
                                               _minus(now_hists, before[1])))

    def summed(self, keep: Callable[[Interval], bool]) -> dict[tuple[str, str], Buckets]:
        """(metric, label) -> buckets over the kept intervals, per node and all nodes
        (label "node1|" for a node's own)."""
        out: dict[tuple[str, str], Buckets] = defaultdict(dict)
        for iv in self.intervals:
            if not keep(iv):
                continue
            for (metric, label), buckets in iv.hists.items():
                _add(out[(metric, label)], buckets)
                _add(out[(metric, f"{iv.node}|{label}")], buckets)
        return dict(out)


def observed(rows: list[dict[str, Any]], during: Callable[[float], bool]
             ) -> tuple[float, list[str]]:
    """The parties' figures: the probe's (the goal: a process that only measures, as a kiosk
    sees the service) and the load processes' (their own loops' queueing included); the
    probe's p99 outside faults first."""
    def outside(kept: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in kept if not during(r["t"] - r["ms"] / 1000)]

    probe = [r for r in rows if r.get("process") == "probe"]
    load = [r for r in rows if r.get("process") != "probe"]
    lines = []
    for title, kept in (("as a kiosk sees the service (the probe: a process apart that only "
                         "measures, its own queue, calls every "
                         f"{PROBE_EVERY_S:g} s)", probe),
                        ("as the load processes saw it (their own queueing included)", load)):
        ms = [r["ms"] for r in outside(kept)]
        lines.append(f"signalling latency {title}, outside fault windows: p50 "
                     f"{percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms over "
                     f"{len(ms)} (request->queued, accept->connected, hangup->ended); with "
                     f"them: p99 {percentile([r['ms'] for r in kept], 99):.1f} ms over "
                     f"{len(kept)}")
        lines.append("  by step (outside faults): " + "; ".join(
            f"{k} p50 {percentile(v, 50):.0f} / p99 {percentile(v, 99):.0f} ms"
            for k in sorted({r["what"] for r in kept})
            for v in [[r["ms"] for r in outside(kept) if r["what"] == k]]))
    goal = percentile([r["ms"] for r in outside(probe)], 99)
    verdict = "met" if goal < GOAL_MS else "MISSED"
    lines.insert(1, f"  goal: p99 < {GOAL_MS:.0f} ms outside the fault seconds, as a kiosk "
                    f"sees it: {verdict}")
    return goal, lines


def waits(hists: dict[tuple[str, str], Buckets]) -> list[str]:
    """The steps' waits by kind, most time first (a bucket's time taken at its middle)."""
    def spent(b: Buckets) -> float:
        bounds, total, lower, below = sorted(b), 0.0, 0.0, 0.0
        for le in bounds:
            top = le if le != float("inf") else lower
            total += (b[le] - below) * (lower + top) / 2
            lower, below = top, b[le]
        return total

    kinds = [(spent(b), label, b) for (metric, label), b in hists.items()
             if metric == WAIT and "|" not in label]
    return [f"{label} p50 {_ms(quantile(b, 0.5))} / p99 {_ms(quantile(b, 0.99))} ms over "
            f"{b.get(float('inf'), 0):.0f} (~{seconds:.0f} s)"
            for seconds, label, b in sorted(kinds, reverse=True)[:WAITS_SHOWN]]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds == seconds else "—"


def describe(scrapes: Scrapes, lags: Iterable[dict[str, object]],
             during: Callable[[float, float], bool]) -> list[str]:
    """The report's lines: the nodes' own handling time by step, every loop's lag."""
    hists = scrapes.summed(lambda iv: not during(iv.start, iv.end))
    lines = []
    parts = []
    for step in STEPS:
        b = hists.get((HANDLE, step), {})
        parts.append(f"{step} p50 {_ms(quantile(b, 0.5))} / p99 {_ms(quantile(b, 0.99))} ms "
                     f"over {b.get(float('inf'), 0):.0f}")
    every: Buckets = {}
    for (metric, label), b in hists.items():
        if metric == HANDLE and "|" not in label:
            _add(every, b)
    parts.append(f"every message p99 {_ms(quantile(every, 0.99))} ms over "
                 f"{every.get(float('inf'), 0):.0f}")
    appends = hists.get((APPEND, ""), {})
    parts.append(f"session-log append (vwin_session_log_append_seconds) p50 "
                 f"{_ms(quantile(appends, 0.5))} / p99 {_ms(quantile(appends, 0.99))} ms over "
                 f"{appends.get(float('inf'), 0):.0f}")
    lines.append("  the nodes' own handling time (vwin_message_handle_seconds, frame read to "
                 "step done, outside faults): " + "; ".join(parts))
    lines.append("  where the steps waited (vwin_step_wait_seconds, outside faults; the kinds "
                 "with the most time in them): " + "; ".join(waits(hists)))
    loops = []
    for (metric, label), b in sorted(hists.items()):
        if metric == LAG and label.endswith("|"):
            loops.append(f"{label[:-1]} p50 {_ms(quantile(b, 0.5))} / p99 "
                         f"{_ms(quantile(b, 0.99))} ms, {over(b, LAG_GOAL_MS / 1000):.1%} "
                         f"> {LAG_GOAL_MS:.0f} ms")
    by_process: dict[str, list[float]] = defaultdict(list)
    for row in lags:
        t, ms = float(row["t"]), float(row["ms"])  # type: ignore[arg-type]
        if not during(t - ms / 1000, t):
            by_process[str(row["process"])].append(ms)
    for name, values in sorted(by_process.items()):
        late = sum(v > LAG_GOAL_MS for v in values) / len(values)
        loops.append(f"{name} p50 {percentile(values, 50):.0f} / p99 "
                     f"{percentile(values, 99):.0f} / max {max(values):.0f} ms, "
                     f"{late:.1%} > {LAG_GOAL_MS:.0f} ms")
    lines.append("  event-loop lag (a timer due now, how late it ran; every 0.1 s, outside "
                 "faults): " + "; ".join(loops))
    return lines

