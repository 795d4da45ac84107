"""`Reorder`: the receiving node puts one principal's messages back in the cluster's order.

Two nodes can decide, one after the other, things that one connection must hear in
that order (node A withdraws an offer, node B then offers the specialist a new
call), and publish their messages independently: B's can arrive first. Each routing
transaction takes a sequence number per principal it tells (inside the same Lua
script, so the numbers follow the order of the transactions in Redis) and the
messages it causes carry it. Here, on the node holding the connection, messages are
released in sequence: one whose predecessor has not arrived is held.

How long: a missing number was taken by a node that logs, then publishes. While no
node of the cluster has been lost, that node is alive and stalled (a slow session-log
append on a loaded machine takes seconds), so the gap is held up to `cap_s`, the hard
cap. Once the node learns that another node was lost (`lost`: its heartbeat lapsed or
it left), the missing number may have died with it: a gap is then held `hold_s` only,
and so is every gap that opens within `cap_s` of the loss (its taker may have died
before the gap opened). A given-up gap is logged; a late arrival is still delivered,
logged, rather than lost; the line's connection is then re-synced (`resync`: the
bus closes it to resume, since it missed what the gap held). A number that comes again
(a publish retried after its reply was lost, a gap filled from Redis) is dropped: one
below the next expected is either delivered already or one of the numbers given up on,
and only those (`skipped`, as ranges) are remembered, so a line keeps nothing per
message delivered in order (issue 16: a set of the latest 512 numbers taken in grew
with every message a connection heard).
At most `max_held` messages per principal are held (a longer run is released at once,
the gap logged): memory stays bounded whatever other nodes do.

A connection starts its line where the principal's counter stood when it attached
(`open`, then `expect`): numbered messages decided before that and arriving in
between are delivered first, in order; arriving later, they are stale (the re-sync
after `welcome` told the connection where it stands) and dropped; the ones decided
after are put in order from the first.

A message that states a condition rather than an event (a caller's position) is
stamped `as_of` the last sequence number its state reflects: it is dropped when a
later event has already been delivered (it would take the connection back in time)
and waits for its event when that is still held.

An unnumbered event (no routing transaction caused it: a participant replaced after
its recorder died, a recording notice) keeps its place (`behind`): it is heard after
the principal's number `after` (the counter when it was sent: every decision before it)
and after the numbered messages already held for the connection; it waits for them
(when the gap fills or is given up, within the same bound), never dropped; with nothing
to wait for it goes straight through. Relayed `rtc.*` frames and chat never come here.

No I/O and no clock of its own: the bus feeds it messages, losses and the time and
asks when the next hold ends (`deadline`), like a sans-I/O protocol core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

TAKEN_HOLD_S = 5.0  # a number a fill found taken and in no list is waited for this long
# at most: its live node may still be logging it (the goal-size day's append p99: 2 s)

Released = list[tuple[str, bytes]]  # (principal, payload), in delivery order


@dataclass
class _Line:
    """One principal's position in its sequence."""

    expected: int | None = None  # the next number to deliver; None until the first
    start: int = 0  # the connection's first number: those before were decided before it
    opening: bool = False  # attached, the counter not read yet: hold everything
    held: dict[int, list[bytes]] = field(default_factory=dict)  # events waiting for a gap
    after: dict[int, list[bytes]] = field(default_factory=dict)  # states waiting for n
    behind: dict[int, list[bytes]] = field(default_factory=dict)  # unnumbered, after n
    since: float | None = None  # when the oldest open gap began
    through: int = 0  # numbers up to this were taken (a fill read the counter): awaited
    skipped: list[range] = field(default_factory=list)  # given up on, not arrived since


class Reorder:
    def __init__(self, hold_s: float, cap_s: float, max_held: int,
                 taken_hold_s: float = TAKEN_HOLD_S) -> None:
        self.hold_s = hold_s
        self.cap_s = cap_s
        self.taken_hold_s = taken_hold_s
        self.max_held = max_held
        self._lines: dict[str, _Line] = {}
        self._open: dict[str, _Line] = {}  # the lines holding something (few, usually none)
        self._lost_at: float | None = None  # when a node of the cluster was last lost
        self.gaps = 0  # gaps given up on (a figure for /metrics and tests)
        self.late = 0  # events that arrived after their gap was given up on
        self.stale = 0  # events decided before their connection attached: dropped
        self.twice = 0  # events that came again (a retried publish, a gap fill): dropped
        self.resync: set[str] = set()  # lines that gave a gap up since the bus last looked

    def open(self, principal: str) -> None:
        """A connection attached: hold its numbered messages until `expect` says where its
        line starts."""
        self.forget(principal)
        self._lines[principal] = _Line(opening=True)

    def expect(self, principal: str, next_seq: int | None, now: float) -> list[bytes]:
        """The connection's line starts at `next_seq` (the counter in Redis, read after it
        attached; None: unknown, start with the first arrival): drop what is older, deliver
        what can go now."""
        line = self._lines.setdefault(principal, _Line())
        if not line.opening and line.expected is not None:  # started already (too many held)
            line.start = min(next_seq or line.start, line.expected)
            return []
        line.opening = False
        if next_seq is None:
            next_seq = line.expected if line.expected is not None else min(line.held, default=None)
        if next_seq is None:  # nothing numbered yet: states go as they are
            line.since = None
            self._open.pop(principal, None)
            return [p for waiting in (line.after, line.behind) for n in sorted(waiting)
                    for p in waiting.pop(n)]
        # Decided before the counter was read, arrived before it: heard first, in order
        # (the re-sync that follows states what they led to).
        out = [p for n in sorted(set(line.held) | set(line.behind)) if n < next_seq
               for p in line.held.pop(n, []) + line.behind.pop(n, [])]
        for n in sorted(line.after):
            if n == next_seq - 1:
                out += line.after.pop(n)
            elif n < next_seq - 1:
                del line.after[n]
        line.expected = line.start = next_seq
        return out + self._drain(principal, line, now)

    def forget(self, principal: str) -> None:
        self._lines.pop(principal, None)
        self._open.pop(principal, None)

    def lost(self, now: float) -> None:
        """A node of the cluster was lost: what it decided and had not sent never comes."""
        self._lost_at = now

    def event(self, principal: str, seq: int, payloads: list[bytes], now: float
              ) -> list[bytes]:
        """The messages of event `seq` (one transaction's, for this principal; none when
        the number is only filled) arrived: what to deliver now, in order."""
        line = self._lines.setdefault(principal, _Line())
        if seq in line.held:  # published again (a retried pipeline) or filled from Redis
            self.twice += 1
            return []
        if line.opening:
            line.held[seq] = payloads
            return self._hold(principal, line, now)
        if line.expected is None:  # what came before the first number is not known
            line.expected = seq
            line.skipped = [r for r in (range(line.start, seq),) if r]
        if seq < line.start:  # decided before the connection attached, arriving only now
            self.stale += 1
            return []
        if seq < line.expected:
            if not self._take_skipped(line, seq):  # delivered already: here again
                self.twice += 1
                return []
            self.late += 1
            log.warning("bus: message %d for %s arrived after %d was delivered", seq,
                        principal, line.expected - 1)
            return payloads
        line.held[seq] = payloads
        if seq == line.expected:
            return self._drain(principal, line, now)
        return self._hold(principal, line, now)

    def next_of(self, principal: str) -> int | None:
        """The next number the principal's line waits for (None: not started)."""
        line = self._lines.get(principal)
        return None if line is None or line.opening else line.expected

    def state(self, principal: str, as_of: int, payload: bytes, now: float) -> list[bytes]:
        """A state as of event `as_of` arrived: deliver, hold behind its event, or drop."""
        line = self._lines.get(principal)
        if line is not None and line.opening:
            line.after.setdefault(as_of, []).append(payload)
            return self._hold(principal, line, now)
        if line is None or line.expected is None or as_of == line.expected - 1:
            return [payload]
        if as_of < line.expected:
            return []  # an event after `as_of` has been delivered (or decided): stale
        line.after.setdefault(as_of, []).append(payload)
        return self._hold(principal, line, now)

    def behind(self, principal: str, payload: bytes, after: int | None, now: float
               ) -> list[bytes]:
        """An unnumbered event sent when the principal's counter stood at `after` (None:
        unknown) arrived: heard after that number and after the numbered messages held
        for the connection, or now when there is none to wait for."""
        line = self._lines.get(principal)
        if line is None:
            return [payload]
        waits = after is not None and (line.opening or (
            line.expected is not None and after >= line.expected))
        key = max(after if after is not None and waits else 0, max(line.held, default=0))
        if key == 0:
            return [payload]
        line.behind.setdefault(key, []).append(payload)
        return self._hold(principal, line, now)

    def taken(self, principal: str, counter: int, now: float) -> None:
        """The principal's counter in Redis stands at `counter`, read after what its lists
        held was put in its line (a lost subscription's fill): a number up to it that the
        line still waits for was taken and is in no list. Nothing may follow to open a gap
        (a kiosk waiting for its `call.connected`), so the line waits for it as for a gap,
        at most `taken_hold_s`: its node may still be logging it (then it comes), or it
        was lost (then it is given up, and the connection re-syncs)."""
        line = self._lines.get(principal)
        if line is None or line.opening or line.expected is None or line.expected > counter:
            return
        line.through = max(line.through, counter)
        if line.since is None:
            line.since = now
            self._open[principal] = line

    def deadline(self) -> float | None:
        """When the first hold ends (the bus wakes `expire` then), or None."""
        ends = [self._ends(line) for line in self._open.values() if line.since is not None]
        return min(ends) if ends else None

    def expire(self, now: float) -> Released:
        """Give up on every gap held as long as it may be: release what waited behind it."""
        out: Released = []
        for principal, line in list(self._open.items()):
            if line.since is not None and self._ends(line) <= now:
                why = "timed out" if self._patient(line) else "a node was lost"
                out += [(principal, p) for p in self._give_up(principal, line, why)]
        return out

    def give_up_all(self, why: str) -> Released:
        """Give up on every gap now (this node's subscription was lost: what was published
        meanwhile never comes)."""
        out: Released = []
        for principal, line in list(self._open.items()):
            out += [(principal, p) for p in self._give_up(principal, line, why)]
        return out

    def _patient(self, line: _Line) -> bool:
        """No node lost within `cap_s` before the gap opened, nor since: its missing
        number's node is alive (only stalled), so the gap is held up to the cap."""
        assert line.since is not None
        return self._lost_at is None or self._lost_at + self.cap_s <= line.since

    def _ends(self, line: _Line) -> float:
        assert line.since is not None
        hold = self.cap_s if self._patient(line) else self.hold_s
        if line.expected is not None and line.expected <= line.through:
            hold = min(hold, self.taken_hold_s)
        return line.since + hold

    def _hold(self, principal: str, line: _Line, now: float) -> list[bytes]:
        if line.since is None:
            line.since = now
            self._open[principal] = line
        waiting = sum(map(len, line.after.values())) + sum(map(len, line.behind.values()))
        if len(line.held) + waiting > self.max_held:
            return self._give_up(principal, line, "too many held")
        return []

    def _drain(self, principal: str, line: _Line, now: float) -> list[bytes]:
        out: list[bytes] = []
        assert line.expected is not None
        if line.since is not None and now - line.since > self.hold_s and line.expected in line.held:
            log.warning("bus: waited %.1f s for message %d for %s (its node was slow)",
                        now - line.since, line.expected, principal)
        while line.expected in line.held:
            out += line.held.pop(line.expected)
            out += line.after.pop(line.expected, [])
            out += line.behind.pop(line.expected, [])
            line.expected += 1
        waiting = line.expected <= line.through
        line.since = now if line.held or line.after or line.behind or waiting else None
        if line.since is None:
            self._open.pop(principal, None)
        else:
            self._open[principal] = line
        return out

    def _give_up(self, principal: str, line: _Line, why: str) -> list[bytes]:
        """Deliver everything held, in order, past the missing numbers (and the numbers
        taken up to `through`); the connection missed what they said, so it re-syncs
        (`resync`)."""
        numbers = sorted(set(line.held) | set(line.after) | set(line.behind))
        passed = line.start if line.expected is None else line.expected  # delivered below
        delivered = set(line.held)
        if line.expected is None:  # still opening: the line starts with what it holds
            line.expected = numbers[0] if numbers else 1
        line.opening = False
        through = line.through
        last = max(max(line.held, default=line.expected - 1), through)
        missing = [n for n in range(line.expected, last + 1) if n not in line.held]
        self.gaps += 1
        self.resync.add(principal)
        log.warning("bus: %s for %s: messages %s never arrived; delivering %d after them",
                    why, principal, missing, len(line.held))
        out: list[bytes] = []
        for n in numbers:
            if n in line.held:
                out += line.held.pop(n)
            out += line.after.pop(n, [])
            out += line.behind.pop(n, [])
        line.expected = max(max(numbers, default=0) + 1, line.expected, through + 1)
        self._skip(line, passed, delivered)
        line.since = None
        self._open.pop(principal, None)
        return out

    def _skip(self, line: _Line, start: int, delivered: set[int]) -> None:
        """Remember the numbers from `start` to the line's next that were not delivered
        (given up on: one arriving later is late, not a repeat), as ranges."""
        assert line.expected is not None
        for n in [*sorted(n for n in delivered if start <= n < line.expected), line.expected]:
            if start < n:
                line.skipped.append(range(start, n))
            start = n + 1
        _bound(line.skipped, self.max_held)

    def _take_skipped(self, line: _Line, seq: int) -> bool:
        """`seq` was given up on and has not come since: True, and it is no longer skipped."""
        for i, gap in enumerate(line.skipped):
            if seq in gap:
                line.skipped[i:i + 1] = [r for r in (range(gap.start, seq),
                                                     range(seq + 1, gap.stop)) if r]
                _bound(line.skipped, self.max_held)
                return True
        return False


def _bound(skipped: list[range], most: int) -> None:
    """At most `most` ranges: the oldest two become one, so a number delivered between
    them that comes again is delivered again (late) rather than one given up on lost."""
    while len(skipped) > most:
        skipped[0:2] = [range(skipped[0].start, skipped[1].stop)]
