"""One embedded server per database: an exclusive lock taken before anything is touched.

With in-memory routing the routing state lives in one process, and a start closes the
sessions "a previous run" left open: a second `vwin serve` on the same database would
mark the first one's live sessions `interrupted` and break their hang-up. So `serve`
first takes a lock that lives as long as the process: `fcntl.flock` on a file beside the
SQLite database, or `pg_try_advisory_lock` on a PostgreSQL connection held open. The
kernel (or PostgreSQL, when the connection drops) frees it however the process ends.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any, Final

from sqlalchemy.engine import make_url

ADVISORY_KEY: Final = 0x7657494E  # "vWIN": the advisory lock id this service owns
LOCK_SUFFIX: Final = ".lock"


class DatabaseLocked(Exception):
    """Another server holds the database; the message says which and what to do."""


def sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL or an in-memory database."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class DatabaseLock:
    """Held from `acquire` until `release` (or the process's end)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._fd: int | None = None
        self._conn: Any = None

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    async def acquire(self) -> None:
        """Take the lock or raise `DatabaseLocked`; changes nothing in the database."""
        path = sqlite_path(self.url)
        if path is not None:
            self._lock_file(path)
        elif make_url(self.url).drivername.startswith("postgresql"):
            await self._lock_postgres()

    def _lock_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = path.with_name(path.name + LOCK_SUFFIX)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DatabaseLocked(
                f"database {path} is in use by another vwin serve (pid {holder}, lock {lock}); "
                "stop it first, or use [routing] backend = \"redis\" to run several") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    async def _lock_postgres(self) -> None:
        import asyncpg

        parsed = make_url(self.url).set(drivername="postgresql")
        conn = await asyncpg.connect(parsed.render_as_string(hide_password=False))
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", ADVISORY_KEY)
            holder = None if got else await conn.fetchval(
                "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objid = $1 "
                "AND l.granted AND l.database = (SELECT oid FROM pg_database "
                "WHERE datname = current_database()) LIMIT 1", ADVISORY_KEY)
        except BaseException:
            await conn.close()
            raise
        if not got:
            await conn.close()
            raise DatabaseLocked(
                f"database {parsed.database} is in use by another vwin serve (PostgreSQL "
                f"backend pid {holder}); stop it first, or use [routing] backend = \"redis\" "
                "to run several")
        self._conn = conn

    async def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
