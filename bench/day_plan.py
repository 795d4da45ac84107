"""What a compressed day is made of: its clock, its arrival profile, its visitors and staff.

Simulated time runs `speed` times faster than the wall clock; every figure the
bench prints is in simulated time, and the queues' timings (target, wrap-up,
decline block) are scaled down so that the server sees the same day, faster.
Arrivals are a non-homogeneous Poisson process (thinning) with two peaks, at
9:30 and 14:30, and few over lunch (visitors who did not know the queues close:
they are refused `closed`). Each visit draws a behaviour from `VISITS` by share: a
new behaviour is one more row there and one more coroutine in `VISIT_STEPS`
(bench.day_load). When the queues close and the appointment slot: bench.day_hours.
"""

from __future__ import annotations

import math
import random
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

DRAIN_H = 1.0  # simulated hours after the windows close: the waiting are still served
DAY_START_H = 9.0  # the windows open; the bench's first simulated hour
LUNCH = (12.0, 13.5)  # the queues' hours close them, specialists away
LUNCH_SHARE = 0.1  # over lunch, arrivals at this share of the quiet-hour rate
PEAKS_H = (9.5, 14.5)
PEAK_WIDTH_H = 0.6
BASE_SHARE = 0.35  # the quiet-hour rate as a share of the peak rate
TARGET_S = 900.0  # the domain's 15-minute average-wait target
TALK_MEAN_S = 360.0  # simulated: a consultation lasts about 6 minutes
WRAPUP_S = 30.0
RING_TIMEOUT_S = 20.0
DECLINE_BLOCK_S = 60.0
OCCUPANCY = 0.8  # arrivals over a day: this share of what the staff can handle
MIN_REAL_S = 1.0  # no server timer is set shorter than this (the loaded machine's jitter)

QUEUES = {"tax": "tax", "registration": "market_regulation",
          "deregistration": "market_regulation"}  # queue -> department that staffs it
QUEUE_SHARES = {"tax": 0.5, "registration": 0.35, "deregistration": 0.15}


@dataclass(frozen=True)
class VisitKind:
    """One behaviour of a visitor and its share of the day's visits."""

    name: str
    share: float
    what: str


VISITS: tuple[VisitKind, ...] = (
    VisitKind("served", 0.60, "waits, is answered, talks, hangs up"),
    VisitKind("impatient", 0.10, "gives up (call.cancel) if not answered within ~3 minutes"),
    VisitKind("flaky", 0.08, "its socket drops while waiting or talking and is resumed"),
    VisitKind("joint", 0.05, "deregistration: a joint action signed by two departments"),
    VisitKind("appointment", 0.08, "booked ahead over HTTP; comes on time, late, or not"),
    VisitKind("handoff", 0.05, "while waiting, hands the call over to a phone (call.handoff)"),
    VisitKind("form", 0.04, "deregistration: the desk presents the form, the visitor signs"),
)
ARRIVALS = {"on_time": 0.6, "late": 0.25, "no_show": 0.15}  # of appointment visits
FORM_ENTERPRISE = "嘉定个体户（申请注销）"  # the desk presents the form to this enterprise

DECLINE_P = 0.05  # a specialist declines an offer
RING_OUT_P = 0.04  # a specialist lets an offer ring out
BREAK_P = 0.05  # after a call, a specialist steps away for a few minutes
BREAK_MEAN_S = 300.0


@dataclass(frozen=True)
class Clock:
    """Simulated hours of day <-> wall-clock seconds since the day's start."""

    t0: float  # wall clock (time.time()) of the day's first simulated second
    speed: float
    hours: float

    def real(self, sim_s: float) -> float:
        return sim_s / self.speed

    def sim(self, real_s: float) -> float:
        return real_s * self.speed

    def at(self, hour: float) -> float:
        """Wall-clock time of a simulated hour of day."""
        return self.t0 + (hour - DAY_START_H) * 3600 / self.speed

    def hour(self, wall: float) -> float:
        return DAY_START_H + (wall - self.t0) * self.speed / 3600

    @property
    def end(self) -> float:
        return self.at(DAY_START_H + self.hours)

    @property
    def closing(self) -> float:
        """Visitors still waiting at the end are served this long (`DRAIN_H`), then cut."""
        return self.at(DAY_START_H + self.hours + DRAIN_H)


def intensity(hour: float) -> float:
    """Relative arrival rate at a simulated hour of day (peak 1, lunch 0)."""
    if LUNCH[0] <= hour < LUNCH[1]:
        return BASE_SHARE * LUNCH_SHARE
    peaks = sum(math.exp(-(((hour - p) / PEAK_WIDTH_H) ** 2)) for p in PEAKS_H)
    return min(1.0, BASE_SHARE + (1 - BASE_SHARE) * peaks)


@dataclass(frozen=True)
class Visit:
    """One arrival, drawn in advance so that every load process plays its share."""

    at_h: float
    queue: str
    kind: str
    patience_s: float
    talk_s: float
    drop_while: str  # "", "waiting" or "talking" (flaky visits)
    arrive: str = ""  # appointment visits: "on_time", "late" or "no_show" (ARRIVALS)
    code: str = ""  # appointment visits: the booking's code, once booked

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class DayPlan:
    hours: float
    speed: float
    specialists: int
    terminals: int
    media_share: float
    seed: int
    visits: list[Visit] = field(default_factory=list)

    def draw(self) -> DayPlan:
        """The day's arrivals: OCCUPANCY of the staff's capacity, shaped by `intensity`."""
        rng = random.Random(self.seed)
        per_specialist_h = 3600 / (TALK_MEAN_S + WRAPUP_S)
        hours = [DAY_START_H + i / 60 for i in range(int(self.hours * 60))]
        mean_intensity = sum(map(intensity, hours)) / max(1, len(hours))
        peak_rate_h = OCCUPANCY * self.specialists * per_specialist_h / max(mean_intensity, 1e-9)
        hour = DAY_START_H
        end = DAY_START_H + self.hours
        kinds, shares = [k.name for k in VISITS], [k.share for k in VISITS]
        while True:
            hour += rng.expovariate(peak_rate_h)
            if hour >= end:
                break
            if rng.random() > intensity(hour):
                continue
            kind = rng.choices(kinds, shares)[0]
            queue = ("deregistration" if kind in ("joint", "form") else
                     rng.choices(list(QUEUE_SHARES), list(QUEUE_SHARES.values()))[0])
            patience = rng.expovariate(1 / 180) if kind == "impatient" else 3 * 3600.0
            self.visits.append(Visit(
                at_h=hour, queue=queue, kind=kind, patience_s=patience,
                talk_s=max(60.0, rng.gauss(TALK_MEAN_S, TALK_MEAN_S / 3)),
                drop_while=rng.choice(["waiting", "talking"]) if kind == "flaky" else "",
                arrive=rng.choices(list(ARRIVALS), list(ARRIVALS.values()))[0]
                if kind == "appointment" else ""))
        return self


def queue_toml(speed: float, extra: str = "", queues: tuple[str, ...] = tuple(QUEUES)
               ) -> str:
    """The bench's queues, their timings scaled to the compressed day; `extra` is added
    to each (their hours and appointment slots: bench.day_hours)."""
    def scaled(sim_s: float) -> float:
        return round(max(MIN_REAL_S, sim_s / speed), 3)

    return "".join(
        f'\n[[queues]]\nid = "{q}"\nname = "{q.title()}"\n'
        f"target_answer_s = {round(TARGET_S / speed, 3)}\n"
        f"ring_timeout_s = {scaled(RING_TIMEOUT_S)}\nwrapup_s = {scaled(WRAPUP_S)}\n"
        f"decline_block_s = {scaled(DECLINE_BLOCK_S)}\n{extra}" for q in queues)


PROBE_QUEUE = "probe"  # the latency probe's own queue (bench.day_probe)
PROBE_EVERY_S = 0.75  # real seconds between two probe calls
PROBE_TALK_S = 1.0  # real seconds a probe call talks
PROBE_KIOSKS = 8
PROBE_DESKS = 6


def probe_toml(speed: float) -> str:
    """The probe's queue: the bench's timings, no opening hours (open all day)."""
    return queue_toml(speed, queues=(PROBE_QUEUE,))


def probe_visits(hours: float, speed: float) -> list[Visit]:
    """A served call every `PROBE_EVERY_S` real seconds of the day, on the probe's queue."""
    step_h = PROBE_EVERY_S * speed / 3600
    return [Visit(at_h=DAY_START_H + i * step_h, queue=PROBE_QUEUE, kind="served",
                  patience_s=3 * 3600.0, talk_s=PROBE_TALK_S * speed, drop_while="")
            for i in range(int(hours / step_h))]


def staff(specialists: int) -> list[tuple[str, str, dict[str, int]]]:
    """(id, department, skills): tax specialists for tax; market regulation for both
    registration queues, in proportion to the queues' shares."""
    tax_n = max(1, round(specialists * QUEUE_SHARES["tax"]))
    out = []
    for i in range(specialists):
        if i < tax_n:
            out.append((f"sp{i:04d}", "tax", {"tax": 1}))
        else:
            out.append((f"sp{i:04d}", "market_regulation",
                        {"registration": 1, "deregistration": 1}))
    return out


def sampled(call_id: str, share: float) -> bool:
    """Whether a call carries real media: both parties decide the same from its id."""
    return zlib.crc32(call_id.encode()) % 1000 < share * 1000
