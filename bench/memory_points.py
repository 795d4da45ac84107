"""Memory read at points of a run (RSS, the collector's objects, tracemalloc's
snapshot) and the report of what grew between them, per 1,000 visits: a first round
(caches filling up) beside a second (a leak keeps growing), with the places of this
project's code that allocated what grew (bench.node_memory)."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass
from pathlib import Path

from bench.common import table

TOP = 15
OURS = ("server", "signaling", "cluster", "storage", "recorder")


@dataclass
class Point:
    """Memory after so many visits (the collector run first)."""

    visits: int
    rss_mb: float
    objects: int
    snapshot: tracemalloc.Snapshot | None

    @property
    def traced(self) -> int:
        return 0 if self.snapshot is None else sum(t.size for t in self.snapshot.traces)


def report(title: str, points: list[Point]) -> str:
    p0, p1, p2 = points
    rows = []
    for name, a, b in (("first", p0, p1), ("second", p1, p2)):
        k = 1000 / (b.visits - a.visits)
        rows.append([name, b.visits - a.visits,
                     f"{(b.traced - a.traced) / 1024 * k:+.1f}" if a.snapshot else "",
                     f"{(b.objects - a.objects) * k:+.0f}", f"{(b.rss_mb - a.rss_mb) * k:+.2f}"])
    summary = table(title, ["round", "visits", "traced Python KB", "gc objects", "RSS MB"],
                    rows)
    if p0.snapshot is None or p1.snapshot is None or p2.snapshot is None:
        return summary
    k1, k2 = 1000 / (p1.visits - p0.visits), 1000 / (p2.visits - p1.visits)
    first = {s.traceback: s.size_diff for s in p1.snapshot.compare_to(p0.snapshot, "traceback")}
    grown = sorted((s for s in p2.snapshot.compare_to(p1.snapshot, "traceback")
                    if s.size_diff > 0), key=lambda s: -s.size_diff)
    places = [[f"{s.size_diff / 1024 * k2:+.1f}", f"{first.get(s.traceback, 0) / 1024 * k1:+.1f}",
               s.count_diff, _where(s.traceback)] for s in grown[:TOP]]
    return summary + "\n" + table("Grown in the second round (KB per 1,000 visits)",
                                  ["second", "first", "blocks", "where (newest first)"], places)


def _where(traceback: tracemalloc.Traceback) -> str:
    """The allocating line and the innermost lines of this project that led to it."""
    frames = list(reversed(traceback))  # newest first
    ours = [f for f in frames[1:] if any(f"/{d}/" in f.filename for d in OURS)][:3]
    return " < ".join(f"{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno}"
                      for f in [frames[0], *ours])
