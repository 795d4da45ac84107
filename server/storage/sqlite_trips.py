"""SQLite through aiosqlite with one round trip to the connection's thread per statement.

SQLAlchemy's aiosqlite adapter opens a cursor, runs the statement, fetches its rows and
closes the cursor as three or four separate calls into aiosqlite's thread, each a queue
put, a thread switch and a wake-up of the event loop: 21 for the session-log append of
an answer (seven statements), 10 for `queued` with the offer. The durable steps of a
call wait for all of them. Here the adapter's cursor runs the four in one call
(`_one_trip`) and keeps what SQLAlchemy reads afterwards (description, rows, rowcount,
last row id); transactions, errors and server-side cursors are the adapter's own.

Written against SQLAlchemy 2.x's `AsyncAdapt_aiosqlite_*` classes and aiosqlite's
`Connection._execute`; `dbapi()` answers None where they are not what this expects,
and the engine keeps the stock adapter.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection
from sqlalchemy.dialects.sqlite import aiosqlite as sa_aiosqlite
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Result = tuple[Any, list[Any] | None, int, int | None]
T = TypeVar("T")


def _one_trip(conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
              ) -> _Result:
    """In aiosqlite's thread: a cursor, the statement, its rows, closed."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else None
        return description, rows, cursor.rowcount, cursor.lastrowid
    finally:
        cursor.close()


class OneTripCursor(sa_aiosqlite.AsyncAdapt_aiosqlite_cursor):
    """A client-side cursor whose statements each take one trip (`_one_trip`)."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor is opened
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        del value  # every row is fetched at once

    async def _async_soft_close(self) -> None:
        return  # nothing open in aiosqlite's thread

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        try:
            return await_(self._run(operation, parameters, False))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        try:
            return await_(self._run(operation, seq_of_parameters, True))
        except Exception as error:
            self._adapt_connection._handle_exception(error)

    async def _run(self, operation: Any, parameters: Any, many: bool) -> None:
        result = await in_thread(self._adapt_connection, _one_trip, operation, parameters, many)
        self._description, rows, self._rowcount, self._lastrowid = result
        self._rows = collections.deque(rows) if rows is not None else collections.deque()


async def in_thread(adapt_connection: Any, fn: Callable[..., T], *args: Any) -> T:
    """`fn(sqlite3_connection, *args)` in aiosqlite's thread: one trip, while no other
    statement of SQLAlchemy's adapter connection runs."""
    connection: aiosqlite.Connection = adapt_connection._connection
    async with adapt_connection._execute_mutex:
        result: T = await connection._execute(  # type: ignore[no-untyped-call]
            fn, connection._conn, *args)
    return result


class OneTripConnection(sa_aiosqlite.AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = OneTripCursor


class OneTripDbapi(sa_aiosqlite.AsyncAdapt_aiosqlite_dbapi):
    """The adapter module SQLAlchemy's aiosqlite dialect is given (`module=`)."""

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        stock = super().connect(*arg, **kw)
        return OneTripConnection(self, stock._connection)


def dbapi() -> OneTripDbapi | None:
    """The one-trip adapter, or None where the classes it builds on are not as expected."""
    stock = sa_aiosqlite.AsyncAdapt_aiosqlite_connection
    expected = (hasattr(aiosqlite.Connection, "_execute")
                and hasattr(aiosqlite.Connection, "_conn")
                and stock._cursor_cls is sa_aiosqlite.AsyncAdapt_aiosqlite_cursor
                and issubclass(stock, AsyncAdapt_dbapi_connection)
                and "_execute_mutex" in AsyncAdapt_dbapi_connection.__slots__)
    return OneTripDbapi(aiosqlite, sqlite3) if expected else None
