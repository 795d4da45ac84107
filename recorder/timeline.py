"""Hold encoded frames briefly, then release them in wall-clock order.

Frames are placed on the wall clock only when released, so a sender report that arrives
while a frame waits still corrects it. The hold also absorbs network jitter and NACK
retransmissions, and it is the reason a crash loses up to ``hold`` seconds plus one WebM
cluster.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .clock import StreamClock


@dataclass(slots=True)
class MediaUnit:
    """One encoded frame: VP8 picture or Opus packet, with its unwrapped RTP time."""

    kind: str
    rtp: int
    data: bytes
    keyframe: bool


class Timeline:
    """Per-stream FIFOs merged by wall-clock time."""

    def __init__(self, hold_s: float) -> None:
        if hold_s < 0:
            raise ValueError("hold must not be negative")
        self.hold_s = hold_s
        self._streams: dict[str, tuple[StreamClock, deque[MediaUnit]]] = {}

    def add_stream(self, kind: str, clock: StreamClock) -> None:
        self._streams[kind] = (clock, deque())

    def push(self, unit: MediaUnit) -> None:
        self._streams[unit.kind][1].append(unit)

    @property
    def pending(self) -> int:
        return sum(len(units) for _, units in self._streams.values())

    def release(self, now: float, flush: bool = False) -> list[tuple[float, MediaUnit]]:
        """Pop every frame older than ``now - hold`` (all if ``flush``), oldest first."""
        released: list[tuple[float, MediaUnit]] = []
        deadline = now - self.hold_s
        while True:
            best: tuple[float, deque[MediaUnit]] | None = None
            for clock, units in self._streams.values():
                if not units:
                    continue
                when = clock.to_local(units[0].rtp)
                if when is None:
                    continue
                if best is None or when < best[0]:
                    best = (when, units)
            if best is None or (not flush and best[0] > deadline):
                return released
            released.append((best[0], best[1].popleft()))
