"""Storage fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL gets a fresh, uniquely named database per test, dropped afterwards.
An unreachable PostgreSQL fails the test: the log must be proven on both.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from server.storage import Database

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_LOGINS = (("postgres", "postgres"), ("root", "postgres"), ("root", "test"))


async def _pg_admin() -> tuple[asyncpg.Connection, str]:
    """A maintenance connection and the role it logged in as."""
    failures = []
    for user, database in PG_LOGINS:
        try:
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=user, database=database, timeout=10
            )
        except (OSError, asyncpg.PostgresError) as exc:
            failures.append(f"{user}@{database}: {exc!r}")
            continue
        return conn, user
    pytest.fail(f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {'; '.join(failures)}")


@pytest.fixture(params=["sqlite", "postgresql"])
async def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database's SQLAlchemy URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"
        return
    admin, user = await _pg_admin()
    name = f"vwin_test_{uuid.uuid4().hex[:16]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database(storage_url: str) -> AsyncIterator[Database]:
    """A connected `Database` at the newest schema, closed after the test."""
    db = await Database.connect(storage_url)
    try:
        await db.upgrade()
        yield db
    finally:
        await db.close()
