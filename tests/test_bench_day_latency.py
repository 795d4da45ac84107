"""The bench day's reading of the nodes' histograms: the steps' waits by kind."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.day_latency import WAIT, histograms, quantile, waits
from server.metrics import HANDLE_BUCKETS


def test_the_waits_are_read_by_kind_and_shown_most_time_first() -> None:
    registry = CollectorRegistry()
    hist = Histogram(WAIT, "waits", ["wait"], buckets=HANDLE_BUCKETS, registry=registry)
    for _ in range(99):
        hist.labels("redis enqueue").observe(0.002)
    hist.labels("redis enqueue").observe(0.2)
    for _ in range(10):
        hist.labels("database log append").observe(0.04)
    hist.labels("redis HGET").observe(0.0003)
    hists = histograms(generate_latest(registry).decode())
    enqueue = hists[(WAIT, "redis enqueue")]
    assert enqueue[float("inf")] == 100
    assert 0.001 < quantile(enqueue, 0.5) <= 0.0025
    assert 0.1 < quantile(enqueue, 0.995) <= 0.25
    shown = waits(hists)
    # time spent: the append ~10 x 37.5 ms, the enqueue ~99 x 1.75 ms + 175 ms, HGET least
    assert [line.split(" p50")[0] for line in shown] == [
        "database log append", "redis enqueue", "redis HGET"]
    assert shown[1].startswith("redis enqueue p50 2 / p99 ")
    assert shown[1].endswith("over 100 (~0 s)")
