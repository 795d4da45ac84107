"""Which appends to the session log may start a group commit now (`sessionlog.py`).

One group at a time made every append wait for the whole group before it (about seven
round trips, each a turn of a busy event loop, then an fsync), even when the two shared
no session. Several groups may now run at once (`GROUPS_IN_FLIGHT`, PostgreSQL), each
on its own connection, as long as no two of them touch the same session: a session's
batches still commit in the order they were appended (a later one never starts while
an earlier one is pending or in flight), and groups in flight never wait on each
other's row locks. SQLite has
one writer: its groups would only queue on its lock, so one at a time there.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from signaling.events import LogEvent

Batch = tuple[Sequence[LogEvent], asyncio.Future[None]]  # one append and its waiter

# Groups one process commits at once. More than one: an append no longer waits for the
# group before it unless they share a session, but every group is a transaction of its own
# on the same few cores, and smaller groups cost more statements for the same appends. On
# this project's 2-core machine, since a group writes in one statement (`pg_write`), more
# lanes cost more than the wait they save (`bench.sessionlog --concurrent`, quiet machine:
# append p50 / p99 8.4 / 28.7 ms with 1, 9.8 / 34.0 with 2, 14.7 / 80.9 with 4; time
# queued 2.5 -> 1.6 ms, time in the group 5.6 -> 11.7 ms): one, unless measured otherwise
# on the database's own hardware (`SessionLog.groups_in_flight`).
GROUPS_IN_FLIGHT: Final = {"postgresql": 1, "sqlite": 1}


def sessions_of(events: Sequence[LogEvent]) -> frozenset[str]:
    return frozenset(e.session_id for e in events if e.session_id)


@dataclass
class Taken:
    """Batches that start one group, with when each was appended (`time.perf_counter`)."""

    batches: list[Batch]
    appended_at: list[float]


@dataclass
class _Pending:
    batch: Batch
    sessions: frozenset[str]
    appended_at: float = field(default_factory=time.perf_counter)


class Lanes:
    """Appends waiting for a group, and the sessions of the groups in flight.

    I/O-free: `SessionLog` adds, takes a group to commit, and frees it once its COMMIT
    returned (or failed)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # groups in flight at most (`GROUPS_IN_FLIGHT`)
        self._pending: list[_Pending] = []
        self._held: dict[int, frozenset[str]] = {}  # group number -> its sessions
        self._numbers = 0

    @property
    def in_flight(self) -> int:
        return len(self._held)

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def add(self, batch: Batch) -> None:
        self._pending.append(_Pending(batch, sessions_of(batch[0])))

    def take(self) -> tuple[int, Taken] | None:
        """The next group: every pending batch, in order, but those touching a session
        a group in flight holds, or one an earlier batch held back touches. None when
        every lane is busy or nothing may start."""
        if not self._pending or len(self._held) >= self.limit:
            return None
        blocked: set[str] = set().union(*self._held.values())
        taken: list[_Pending] = []
        kept: list[_Pending] = []
        for pending in self._pending:
            if pending.sessions & blocked:
                kept.append(pending)
                blocked |= pending.sessions  # its later batches wait behind it
            else:
                taken.append(pending)
        if not taken:
            return None
        self._pending = kept
        self._numbers += 1
        self._held[self._numbers] = frozenset().union(*(p.sessions for p in taken))
        return self._numbers, Taken([p.batch for p in taken], [p.appended_at for p in taken])

    def free(self, number: int) -> bool:
        """The group's COMMIT returned or failed: its sessions may be taken again.
        False when it was freed already."""
        return self._held.pop(number, None) is not None
