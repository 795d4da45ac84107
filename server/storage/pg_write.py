"""PostgreSQL: everything an append writes, in one statement (`pg_rows.PgRows.write`).

A group wrote its rows with one statement per kind (new sessions, changed sessions,
new participants, changed participants, events): up to five round trips between the
SELECT that locked its sessions and the COMMIT, each a turn of a busy event loop while
the other node's group waited for those locks (`bench.sessionlog --concurrent`). Here
they are one statement of data-modifying CTEs, each kind of row one JSON array turned
into rows of its table (`json_populate_recordset`: every value cast to its column's
type). The events go in last, in the order given (`WITH ORDINALITY`), so their ids keep
the log's order; their foreign key to a session inserted by the same statement is
checked at its end, when that session is there. A conflict (a session or call id
already logged) fails the statement as a whole, as the separate INSERTs did; but not a
participant already there (`_NEW_PEOPLE`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec
import sqlalchemy as sa

from server.storage.projection import (
    PARTICIPANT_KEYS,
    PARTICIPANT_MUTABLE,
    SESSION_KEYS,
    SESSION_MUTABLE,
    Projection,
)
from server.storage.schema import session_events, session_participants, sessions

_EVENT_COLUMNS: Final = ("session_id", "call_id", "ts", "type", "actor", "data")
# asyncpg's positional parameters, in the order `params` gives them
_PARAMS: Final = ("new_sessions", "changed_sessions", "changed_sessions_ids", "new_people",
                  "changed_people", "changed_people_ids", "events")


def _p(name: str) -> str:
    return f"${_PARAMS.index(name) + 1}"


def _insert(table: sa.Table, param: str, alias: str = "") -> str:
    names = ", ".join(c.name for c in table.c)
    return (f"INSERT INTO {table.name}{alias} ({names}) SELECT {names} FROM "
            f"json_populate_recordset(NULL::{table.name}, {_p(param)}::json)")


def _update(table: sa.Table, keys: Sequence[str], mutable: Sequence[str], param: str) -> str:
    """The rows found by their first key in `{param}_ids` too: the planner takes the JSON
    for 100 rows and, joining on it alone, scanned the whole table (a year of sessions)."""
    changed = ", ".join(f"{name} = v.{name}" for name in mutable)
    match = " AND ".join(f"t.{k} = v.{k}" for k in keys)
    return (f"UPDATE {table.name} AS t SET {changed} FROM json_populate_recordset("
            f"NULL::{table.name}, {_p(param)}::json) AS v WHERE {match}"
            f" AND t.{keys[0]} = ANY({_p(param + '_ids')}::varchar[])")


_EVENTS: Final = ", ".join(_EVENT_COLUMNS)
# A participant the projection took for new may have been inserted by another node's
# append that committed while this one waited for the session's lock: the rows of other
# tables the locking SELECT read are of its snapshot, taken before the wait (the hand-off
# and the answer both joining the visitor, `bench.node_memory`). Then this row is what the
# projection makes of a known one (`Projection._join`): one row, the earlier join, and a
# leave later than this join stays (else this append's own leave, or none).
_KEPT_LEAVE: Final = ("CASE WHEN EXCLUDED.left_at IS NULL AND t.left_at > EXCLUDED.joined_at"
                      " THEN t.{0} ELSE EXCLUDED.{0} END")
_NEW_PEOPLE: Final = (
    _insert(session_participants, "new_people", " AS t")
    + f" ON CONFLICT ({', '.join(PARTICIPANT_KEYS)}) DO UPDATE SET"
    " joined_at = LEAST(t.joined_at, EXCLUDED.joined_at), "
    + ", ".join(f"{name} = {_KEPT_LEAVE.format(name)}" for name in ("left_at", "left_reason")))
_CHANGED_SESSIONS: Final = _update(sessions, SESSION_KEYS, SESSION_MUTABLE, "changed_sessions")
_CHANGED_PEOPLE: Final = _update(session_participants, PARTICIPANT_KEYS, PARTICIPANT_MUTABLE,
                                 "changed_people")
WRITE: Final = (
    f"WITH new_sessions AS ({_insert(sessions, 'new_sessions')}),"
    f" changed_sessions AS ({_CHANGED_SESSIONS}),"
    f" new_people AS ({_NEW_PEOPLE}),"
    f" changed_people AS ({_CHANGED_PEOPLE})"
    f" INSERT INTO {session_events.name} ({_EVENTS})"
    f" SELECT {', '.join(f'e.{c}' for c in _EVENT_COLUMNS)}"
    f" FROM json_populate_recordset(NULL::{session_events.name}, {_p('events')}::json)"
    f" WITH ORDINALITY AS e ORDER BY e.ordinality")


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return msgspec.json.encode(rows).decode()


def params(projection: Projection, events: list[dict[str, Any]]) -> tuple[Any, ...]:
    """`WRITE`'s parameters: the projection's changes and the events."""
    changed_people = sorted(projection.dirty_participants)
    return (
        _json([projection.sessions[i] for i in projection.new_sessions]),
        _json([projection.sessions[i] for i in sorted(projection.dirty_sessions)]),
        sorted(projection.dirty_sessions),
        _json([projection.participants[k] for k in projection.new_participants]),
        _json([projection.participants[k] for k in changed_people]),
        sorted({sid for sid, _ in changed_people}),
        _json(events),
    )
