"""The day's queue figures, computed from the session log as the manager report defines
them, and held against what `GET /api/reports?by=queue` answers for the same day.

Definitions (server/storage/reports.py): sessions are counted by when they were
queued, rejected ones excluded; answered = reached a specialist; abandoned = gave
up before any answer; answered within target = wait <= the queue's target; the
90th-percentile wait is `percentile_cont(0.9)` (interpolated). The bench prints
waits in simulated time (real seconds x speed); the comparison is in the
server's real seconds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bench.day_plan import TARGET_S
from signaling import events as ev

Row = dict[str, Any]
TOLERANCE = 1e-6  # relative: the same rows, summed in another order


@dataclass
class QueueFigures:
    queue: str
    offered: int = 0
    answered: int = 0
    abandoned: int = 0
    within: int = 0
    avg_wait_s: float | None = None
    p90_wait_s: float | None = None


def p90(values: list[float]) -> float | None:
    """percentile_cont(0.9): between the values ranked 0.9 (n - 1) rounded down and up."""
    if not values:
        return None
    ordered = sorted(values)
    rank = 0.9 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def figures(sessions: list[Row], speed: float) -> dict[str, QueueFigures]:
    """Per queue and "total", in the server's real seconds."""
    target = TARGET_S / speed
    groups: dict[str, list[Row]] = {}
    for s in sessions:
        if s["state"] != ev.STATE_REJECTED:
            groups.setdefault(s["queue"], []).append(s)
            groups.setdefault("total", []).append(s)
    out = {}
    for queue, rows in sorted(groups.items()):
        waits = [float(r["wait_s"]) for r in rows
                 if r["answered_at"] is not None and r["wait_s"] is not None]
        f = QueueFigures(queue, offered=len(rows),
                         answered=sum(r["answered_at"] is not None for r in rows),
                         abandoned=sum(r["state"] == ev.STATE_ABANDONED
                                       and r["answered_at"] is None for r in rows),
                         within=sum(w <= target for w in waits),
                         avg_wait_s=sum(waits) / len(waits) if waits else None,
                         p90_wait_s=p90(waits))
        out[queue] = f
    return out


def local_days(start: float, end: float, tz: str) -> tuple[str, str]:
    zone = ZoneInfo(tz)
    first = dt.datetime.fromtimestamp(start, zone).date()
    last = dt.datetime.fromtimestamp(end, zone).date()
    return first.isoformat(), last.isoformat()


async def reported(url: str, manager: tuple[str, str], days: tuple[str, str]
                   ) -> dict[str, Row]:
    """The report page's rows by queue for the day(s) of the run."""
    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/api/login", json={"username": manager[0],
                                                       "password": manager[1]}) as resp:
            token = (await resp.json())["token"]
        async with http.get(url + "/api/reports", params={"from": days[0], "to": days[1],
                                                          "by": "queue"},
                            headers={"Authorization": f"Bearer {token}"}) as resp:
            body = await resp.json()
    return {str(r["key"]): r for r in body["rows"]}


def disagreements(ours: dict[str, QueueFigures], theirs: dict[str, Row]) -> list[str]:
    out = []
    for queue, f in ours.items():
        if queue == "total":
            continue
        row = theirs.get(queue)
        if row is None:
            out.append(f"{queue}: not in the report")
            continue
        pairs = [("offered", f.offered, row["sessions"]), ("answered", f.answered,
                 row["answered"]), ("abandoned", f.abandoned, row["abandoned"]),
                 ("within target", f.within, row["answered_within_target"]),
                 ("average wait", f.avg_wait_s, row["avg_wait_s"]),
                 ("p90 wait", f.p90_wait_s, row["p90_wait_s"])]
        for name, mine, report in pairs:
            if not _same(mine, report):
                out.append(f"{queue} {name}: bench {mine}, report {report}")
    for queue in set(theirs) - set(ours):
        out.append(f"{queue}: in the report only")
    return out


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=1e-9)


def queue_table(ours: dict[str, QueueFigures], speed: float) -> list[list[object]]:
    """Rows for the printed table, waits in simulated minutes."""
    def minutes(real_s: float | None) -> str:
        return "—" if real_s is None else f"{real_s * speed / 60:.1f}"

    rows: list[list[object]] = []
    for f in ours.values():
        share = f"{100 * f.within / f.answered:.0f} %" if f.answered else "—"
        verdict = "met" if f.avg_wait_s is not None and f.avg_wait_s * speed <= TARGET_S \
            else ("—" if f.avg_wait_s is None else "MISSED")
        rows.append([f.queue, f.offered, f.answered, f.abandoned, f"{f.within} ({share})",
                     minutes(f.avg_wait_s), minutes(f.p90_wait_s), verdict])
    return rows
