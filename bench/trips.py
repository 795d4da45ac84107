"""Every statement a `Database` sends, on each of its paths: SQLAlchemy's (its cursor
events; SQLite's COMMIT and ROLLBACK as events); the session log's own on SQLite
(`storage/sqlite_rows.py`, its observers); and on asyncpg (`storage/pg_rows.py`), seen
by the driver's query logger, which also sees the BEGIN, COMMIT and SAVEPOINTs
SQLAlchemy's adapter sends. For `bench.sessionlog --concurrent` and the tests that
count round trips."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import asyncpg
import sqlalchemy as sa

if TYPE_CHECKING:  # not imported: `bench.sessionlog_load` may run another checkout's
    from server.storage import Database


def kind(statement: str) -> str:
    """A statement's first word, upper case: SELECT, WITH, BEGIN, COMMIT..."""
    return statement.lstrip().split(None, 1)[0].rstrip(";").upper()


@contextlib.asynccontextmanager
async def observed(db: Database, seen: Callable[[str], None]) -> AsyncIterator[None]:
    """`seen` called with each statement `db` sends while inside."""
    engine = db._engine.sync_engine
    sqlite = db.dialect == "sqlite"
    drivers: set[asyncpg.Connection] = set()

    def cursor(_conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        seen(statement)

    def logged(record: Any) -> None:
        seen(record.query)

    def checkout(dbapi_connection: Any, *_rest: Any) -> None:
        driver = dbapi_connection.driver_connection
        if isinstance(driver, asyncpg.Connection) and driver not in drivers:
            drivers.add(driver)
            driver.add_query_logger(logged)

    def ended(name: str) -> Callable[..., None]:
        return lambda *_args: seen(name)

    events: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", cursor), (engine.pool, "checkout", checkout)]
    if sqlite:
        events += [(engine, "commit", ended("COMMIT")), (engine, "rollback", ended("ROLLBACK"))]
    for target, name, fn in events:
        sa.event.listen(target, name, fn)
    if sqlite:
        from server.storage.sqlite_rows import statement_observers
        statement_observers.add(seen)
    try:
        yield
        await asyncio.sleep(0)  # the driver's logger reports on the loop's next turn
    finally:
        for target, name, fn in events:
            sa.event.remove(target, name, fn)
        for driver in drivers:
            driver.remove_query_logger(logged)
        if sqlite:
            statement_observers.discard(seen)
