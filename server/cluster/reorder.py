"""`Reorder`: the receiving node puts one principal's messages back in the cluster's order.

Two nodes can decide, one after the other, things that one connection must hear in
that order (node A withdraws an offer, node B then offers the specialist a new
call), and publish their messages independently: B's can arrive first. Each routing
transaction takes a sequence number per principal it tells (inside the same Lua
script, so the numbers follow the order of the transactions in Redis) and the
messages it causes carry it. Here, on the node holding the connection, messages are
released in sequence: one whose predecessor has not arrived is held, at most
`hold_s`, then released with the ones after it and the gap logged (the predecessor's
node may have died between deciding and sending: no stall, and a late arrival is
still delivered, logged, rather than lost). At most `max_held` messages per
principal are held (a longer run is released at once, the gap logged): memory
stays bounded whatever other nodes do.

A message that states a condition rather than an event (a caller's position) is
stamped `as_of` the last sequence number its state reflects: it is dropped when a
later event has already been delivered (it would take the connection back in time)
and waits for its event when that is still held.

No I/O and no clock of its own: the bus feeds it messages and the time and asks
when the next hold ends (`deadline`), like a sans-I/O protocol core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Released = list[tuple[str, bytes]]  # (principal, payload), in delivery order


@dataclass
class _Line:
    """One principal's position in its sequence."""

    expected: int | None = None  # the next number to deliver; None until the first
    held: dict[int, list[bytes]] = field(default_factory=dict)  # events waiting for a gap
    after: dict[int, list[bytes]] = field(default_factory=dict)  # states waiting for n
    since: float | None = None  # when the oldest open gap began


class Reorder:
    def __init__(self, hold_s: float, max_held: int) -> None:
        self.hold_s = hold_s
        self.max_held = max_held
        self._lines: dict[str, _Line] = {}
        self._open: dict[str, _Line] = {}  # the lines holding something (few, usually none)
        self.gaps = 0  # gaps given up on (a figure for /metrics and tests)
        self.late = 0  # events that arrived after their gap was given up on

    def expect(self, principal: str, next_seq: int) -> None:
        """A new connection: the next number it will be told (from the counter in Redis)."""
        self._lines[principal] = _Line(expected=next_seq)

    def forget(self, principal: str) -> None:
        self._lines.pop(principal, None)
        self._open.pop(principal, None)

    def event(self, principal: str, seq: int, payloads: list[bytes], now: float
              ) -> list[bytes]:
        """The messages of event `seq` (one transaction's, for this principal; none when
        the number is only filled) arrived: what to deliver now, in order."""
        line = self._lines.setdefault(principal, _Line())
        if line.expected is None:
            line.expected = seq
        if seq in line.held:
            return []  # published twice (a retried pipeline)
        if seq < line.expected:
            self.late += 1
            log.warning("bus: message %d for %s arrived after %d was delivered", seq,
                        principal, line.expected - 1)
            return payloads
        line.held[seq] = payloads
        if seq == line.expected:
            return self._drain(principal, line, now)
        return self._hold(principal, line, now)

    def state(self, principal: str, as_of: int, payload: bytes, now: float) -> list[bytes]:
        """A state as of event `as_of` arrived: deliver, hold behind its event, or drop."""
        line = self._lines.get(principal)
        if line is None or line.expected is None or as_of == line.expected - 1:
            return [payload]
        if as_of < line.expected:
            return []  # an event after `as_of` has been delivered: stale
        line.after.setdefault(as_of, []).append(payload)
        return self._hold(principal, line, now)

    def deadline(self) -> float | None:
        """When the oldest hold ends (the bus wakes `expire` then), or None."""
        starts = [line.since for line in self._open.values() if line.since is not None]
        return min(starts) + self.hold_s if starts else None

    def expire(self, now: float) -> Released:
        """Give up on every gap held `hold_s` or longer: release what waited behind it."""
        out: Released = []
        for principal, line in list(self._open.items()):
            if line.since is not None and line.since + self.hold_s <= now:
                out += [(principal, p) for p in self._give_up(principal, line, "timed out")]
        return out

    def _hold(self, principal: str, line: _Line, now: float) -> list[bytes]:
        if line.since is None:
            line.since = now
            self._open[principal] = line
        if len(line.held) + sum(map(len, line.after.values())) > self.max_held:
            return self._give_up(principal, line, "too many held")
        return []

    def _drain(self, principal: str, line: _Line, now: float) -> list[bytes]:
        out: list[bytes] = []
        assert line.expected is not None
        while line.expected in line.held:
            out += line.held.pop(line.expected)
            out += line.after.pop(line.expected, [])
            line.expected += 1
        line.since = now if line.held or line.after else None  # the next gap's hold starts
        if line.since is None:
            self._open.pop(principal, None)
        return out

    def _give_up(self, principal: str, line: _Line, why: str) -> list[bytes]:
        """Deliver everything held, in order, past the missing numbers."""
        assert line.expected is not None
        numbers = sorted(set(line.held) | set(line.after))
        missing = [n for n in range(line.expected, max(line.held, default=line.expected))
                   if n not in line.held]
        self.gaps += 1
        log.warning("bus: %s for %s: messages %s never arrived; delivering %d after them",
                    why, principal, missing, len(line.held))
        out: list[bytes] = []
        for n in numbers:
            if n in line.held:
                out += line.held.pop(n)
            out += line.after.pop(n, [])
        line.expected = max(max(numbers, default=0) + 1, line.expected)
        line.since = None
        self._open.pop(principal, None)
        return out
