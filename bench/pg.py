"""The local PostgreSQL's maintenance connection and throw-away databases: one login
routine for the benchmarks and the tests (tests/storage_fixtures.py)."""

from __future__ import annotations

import uuid

import asyncpg

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_LOGINS = (("postgres", "postgres"), ("root", "postgres"), ("root", "test"))


class PgUnreachable(RuntimeError):
    """None of the logins PostgreSQL is set up with here answered."""


async def pg_admin() -> tuple[asyncpg.Connection, str]:
    """A maintenance connection and the role it logged in as."""
    failures = []
    for user, database in PG_LOGINS:
        try:
            conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=user,
                                         database=database, timeout=10)
        except (OSError, asyncpg.PostgresError) as exc:
            failures.append(f"{user}@{database}: {exc!r}")
            continue
        return conn, user
    raise PgUnreachable(f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {'; '.join(failures)}")


def pg_url(user: str, name: str) -> str:
    return f"postgresql+asyncpg://{user}@{PG_HOST}:{PG_PORT}/{name}"


async def create_database(prefix: str, hex_chars: int = 16, durable: bool = True
                          ) -> tuple[str, str]:
    """A new, uniquely named database: its name and SQLAlchemy URL. `durable=False`: its
    commits do not wait for the WAL to reach the disk (`synchronous_commit = off`; for the
    tests, which kill processes, never the machine: a commit the server acknowledged is
    still seen by every later reader)."""
    admin, user = await pg_admin()
    name = f"{prefix}_{uuid.uuid4().hex[:hex_chars]}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        if not durable:
            await admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    finally:
        await admin.close()
    return name, pg_url(user, name)


async def drop_database(name: str) -> None:
    """`name` dropped, its connections closed by force."""
    admin, _ = await pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
