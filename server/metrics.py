"""`GET /metrics`: what the service is doing, in the Prometheus text format.

Each app has its own `CollectorRegistry` (tests build many apps in one process). Live
figures (queues, connections, recorders, health) are read when scraped: the handler
gathers them asynchronously, then a collector hands them to prometheus-client.

In a cluster every node exports its own figures. Queue and recorder-pool figures are
shared state (Redis), so every node exports the same values under its `node` label:
aggregate them with `max by (queue)`, never `sum` (docs/operations.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Final
from zoneinfo import ZoneInfo

from aiohttp import web
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from server.steptrace import SlowSteps, Trace
from server.turn import turn_credentials_issued

HEALTH_TIMEOUT_S: Final = 2.0  # a scrape must not hang on a database or Redis that hangs
APPEND_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
"""Session-log append latency: group commit is a few ms on SQLite, a stall is ~1 s."""
HANDLE_BUCKETS: Final = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                         1.0, 2.5, 5.0)
"""Message handling: a relay is well under 1 ms, a routing step with its log append a few
ms, one that waits on a stalled database or Redis seconds."""
LAG_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
LAG_INTERVAL_S: Final = 0.1
"""The event loop's lag is sampled this often: a timer due now, how late it ran."""
OUTCOMES: Final = ("offered", "answered", "abandoned", "rejected")
AGENT_STATES: Final = ("available", "busy", "away")
ROLES: Final = ("terminal", "specialist", "recorder")


class _Live(Collector):
    """Hands prometheus-client the families gathered for the current scrape."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families


class Metrics:
    """One app's registry; the app's parts report into it (append latency) or are read."""

    def __init__(self, slow_step_s: float = 0.0) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.append_seconds = Histogram(
            "vwin_session_log_append_seconds", "Time one session-log append took to commit",
            buckets=APPEND_BUCKETS, registry=self.registry)
        self.handle_seconds = Histogram(
            "vwin_message_handle_seconds", "Time one signalling message took from its frame "
            "read to its step done (replies queued), by message type",
            ["type"], buckets=HANDLE_BUCKETS, registry=self.registry)
        self.loop_lag_seconds = Histogram(
            "vwin_event_loop_lag_seconds", "How late the event loop ran a timer due now "
            f"(sampled every {LAG_INTERVAL_S:g} s): what any frame waits before it is read",
            buckets=LAG_BUCKETS, registry=self.registry)
        self.rebalanced = Counter(
            "vwin_connections_rebalanced", "Signalling sockets this node closed (1012, "
            "`rebalance`) to move them to a node below its fair share", registry=self.registry)
        self.rebalance_rounds = Counter(
            "vwin_rebalance_rounds", "Rebalancing rounds that compared this node's sockets "
            "with the other live nodes'", registry=self.registry)
        self.step_wait_seconds = Histogram(
            "vwin_step_wait_seconds", "Time a signalling step waited on one call to Redis or "
            "the database, by kind of wait (the routing script, command or store call)",
            ["wait"], buckets=HANDLE_BUCKETS, registry=self.registry)
        self.slow_steps = SlowSteps(slow_step_s)
        self._handled: dict[str, Callable[[float], None]] = {}
        self._waited: dict[str, Callable[[float], None]] = {}
        self._live = _Live()
        self.registry.register(self._live)
        self.redis_ping: Callable[[], Awaitable[Any]] | None = None  # set with Redis routing
        self._lock = asyncio.Lock()

    async def render(self, app: web.Application) -> bytes:
        """The text exposition of every metric, live figures read now."""
        async with self._lock:
            self._live.families = await gather(app, self)
            return generate_latest(self.registry)


    def handled(self, tag: str) -> Callable[[float], None]:
        """The `observe` of one message type's handling time (looked up once per type:
        it runs for every frame, relayed ICE candidates included)."""
        observe = self._handled.get(tag)
        if observe is None:
            observe = self._handled[tag] = self.handle_seconds.labels(tag).observe
        return observe

    def step_done(self, tag: str, trace: Trace, seconds: float) -> None:
        """One handled message: its time, its waits by kind, and the slow-step log."""
        self.handled(tag)(seconds)
        for kind, _, waited in trace.waits:
            observe = self._waited.get(kind)
            if observe is None:
                observe = self._waited[kind] = self.step_wait_seconds.labels(kind).observe
            observe(waited)
        self.slow_steps.check(tag, trace, seconds)


METRICS = web.AppKey("metrics", Metrics)


async def watch_loop_lag(observe: Callable[[float], None],
                         interval: float = LAG_INTERVAL_S) -> None:
    """Until cancelled: every `interval`, how late the loop ran a timer (s) to `observe`.
    A loop busy with other callbacks (or a process short of CPU) runs it late by what a
    message arriving then waits before it is even read. Shared with the bench's load
    processes (bench.day_worker), whose own queueing is measured the same way."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - due))


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


async def gather(app: web.Application, metrics: Metrics) -> list[Metric]:
    """Every live family: queues, calls today, connections, recorders, health, TURN."""
    from server import keys

    node = app[keys.NODE_ID]
    families = await _queues(app, node)
    families += _connections(app, node)
    families += await _recording(app, node)
    families += await _health(app, metrics, node)
    turn = CounterMetricFamily("vwin_turn_credentials_issued", "TURN credentials handed out",
                               labels=["node"])
    turn.add_metric([node], turn_credentials_issued())
    families.append(turn)
    return families


async def _queues(app: web.Application, node: str) -> list[Metric]:
    from server import keys

    board, settings, db = app[keys.BOARD], app[keys.SETTINGS], app[keys.DB]
    waiting = _gauge("vwin_queue_waiting", "Calls waiting in the queue", ["queue", "node"])
    longest = _gauge("vwin_queue_longest_wait_seconds", "Wait of the longest-waiting call",
                     ["queue", "node"])
    agents = _gauge("vwin_queue_agents", "Specialists with the queue's skill, by state",
                    ["queue", "state", "node"])
    calls = _gauge("vwin_queue_calls_today", "Calls since local midnight, by outcome",
                   ["queue", "outcome", "node"])
    level = _gauge("vwin_queue_service_level_ratio",
                   "Answered within target / (answered + abandoned), today", ["queue", "node"])
    now = board.services.clock()
    local = board.services.utcnow().astimezone(ZoneInfo(settings.server.timezone))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(dt.UTC)
    figures = await db.queue_figures(midnight, {q.id: q.target_answer_s for q in settings.queues})
    for q in settings.queues:
        snap = await board.services.router.snapshot(q.id, now)
        waiting.add_metric([q.id, node], snap.waiting)
        longest.add_metric([q.id, node], snap.longest_wait_s)
        for state, count in zip(AGENT_STATES, (snap.available, snap.busy, snap.away),
                                strict=True):
            agents.add_metric([q.id, state, node], count)
        fig = figures.get(q.id)
        if fig is None:
            continue
        for outcome in OUTCOMES:
            calls.add_metric([q.id, outcome, node], getattr(fig, outcome))
        if fig.service_level is not None:
            level.add_metric([q.id, node], fig.service_level / 100)
    return [waiting, longest, agents, calls, level]


def _connections(app: web.Application, node: str) -> list[Metric]:
    from server import keys

    counts = dict.fromkeys(ROLES, 0)
    for principal in app[keys.BUS].connected():
        role = principal.split(":", 1)[0]
        if role in counts:
            counts[role] += 1
    sockets = len(app[keys.SOCKETS])
    counts["unauthenticated"] = max(0, sockets - sum(counts.values()))
    family = _gauge("vwin_websocket_connections", "Signalling WebSockets on this node, by role",
                    ["role", "node"])
    for role, count in counts.items():
        family.add_metric([role, node], count)
    return [family]


async def _recording(app: web.Application, node: str) -> list[Metric]:
    from server.recording.embedded import RECORDING

    services = app[RECORDING]
    recorders = _gauge("vwin_recorders", "Live recorders", ["node"])
    capacity = _gauge("vwin_recorder_capacity", "Sessions the live recorders can take", ["node"])
    recorded = _gauge("vwin_recorded_sessions", "Sessions being recorded now", ["node"])
    dropped = CounterMetricFamily("vwin_recording_dropped_frames",
                                  "Frames recorders dropped (closed segments)", labels=["node"])
    segments = CounterMetricFamily("vwin_recording_segments",
                                   "Recording segments closed, by state", labels=["state", "node"])
    loads = [] if services.setup is None else await services.setup.pool.recorders()
    recorders.add_metric([node], len(loads))
    capacity.add_metric([node], sum(r.capacity for r in loads))
    recorded.add_metric([node], sum(len(r.calls) for r in loads))
    catalog = services.catalog
    dropped.add_metric([node], catalog.frames_dropped if catalog is not None else 0)
    for state in ("finished", "failed"):
        closed = catalog.segments_closed.get(state, 0) if catalog is not None else 0
        segments.add_metric([state, node], closed)
    return [recorders, capacity, recorded, dropped, segments]


async def _health(app: web.Application, metrics: Metrics, node: str) -> list[Metric]:
    from server import keys

    family = _gauge("vwin_up", "1 when the dependency answers now, else 0",
                    ["dependency", "node"])
    family.add_metric(["database", node], await _answers(app[keys.DB].ping))
    if metrics.redis_ping is not None:
        family.add_metric(["redis", node], await _answers(metrics.redis_ping))
    return [family]


async def _answers(ping: Callable[[], Awaitable[Any]]) -> int:
    try:
        await asyncio.wait_for(ping(), HEALTH_TIMEOUT_S)
    except Exception:
        return 0
    return 1


def exported_names(text: str) -> set[str]:
    """Metric names in an exposition (histogram/counter sample suffixes included)."""
    names: set[str] = set()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            names.add(line.split("{", 1)[0].split(" ", 1)[0])
    return names
