"""Storage fixtures: every storage test runs on SQLite and on PostgreSQL.

- `storage_url`: an empty database, new for each test (a SQLite file, or a
  uniquely named PostgreSQL database dropped afterwards).
- `database_url`: a database at the newest schema with no rows: a copy of a
  SQLite file migrated once, or one PostgreSQL database per test session,
  emptied before each test (CREATE DATABASE costs a second on a busy machine).
- `database`: a connected `Database` on `database_url`, closed after the test.

An unreachable PostgreSQL fails the test: the log must be proven on both.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from bench.pg import PgUnreachable, create_database, drop_database
from server.storage import Database
from server.storage.migrate import upgrade
from server.storage.schema import metadata

BACKENDS = ["sqlite", "postgresql"]

_T = TypeVar("_T")


async def _create_pg_database() -> tuple[str, str]:
    with _reachable():
        return await create_database("vwin_test", durable=False)


async def _drop_pg_database(name: str) -> None:
    with _reachable():
        await drop_database(name)


@contextlib.contextmanager
def _reachable() -> Iterator[None]:
    try:
        yield
    except PgUnreachable as exc:
        pytest.fail(str(exc))


def _run_aside(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine on its own loop in a thread: session fixtures outlive test loops."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(params=BACKENDS)
def storage_backend(request: pytest.FixtureRequest) -> str:
    """`sqlite` or `postgresql`."""
    return str(request.param)


@pytest.fixture
async def storage_url(storage_backend: str, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's SQLAlchemy URL, new for this test."""
    if storage_backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vwin-empty.db'}"
        return
    name, url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str]:
    name, url = _run_aside(_create_pg_database())
    try:
        _run_aside(upgrade(url))
        yield url
    finally:
        _run_aside(_drop_pg_database(name))


@pytest.fixture(scope="session")
def _sqlite_migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("storage") / "migrated.db"
    _run_aside(upgrade(f"sqlite+aiosqlite:///{path}"))  # closed: the WAL is checkpointed
    return path


@pytest.fixture
async def database_url(
    storage_backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> str:
    """A database at the newest schema, without rows."""
    if storage_backend == "sqlite":
        path = tmp_path / "vwin.db"
        shutil.copyfile(request.getfixturevalue("_sqlite_migrated"), path)
        return f"sqlite+aiosqlite:///{path}"
    url = str(request.getfixturevalue("_pg_migrated"))
    tables = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A connected `Database` at the newest schema, closed after the test."""
    db = await Database.connect(database_url)
    try:
        yield db
    finally:
        await db.close()


@pytest.fixture
async def fresh_pg_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test (processes can share it), dropped after."""
    name, url = await _create_pg_database()
    try:
        yield url
    finally:
        await _drop_pg_database(name)
