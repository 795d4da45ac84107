"""`vwin backup DIR` / `vwin restore DIR`: the embedded SQLite database and the manifests.

The database is copied with SQLite's online-backup API, in one step: it reads one
consistent snapshot while the server goes on writing (WAL: readers never block the
writer). The recordings' manifests (`*.json` beside each segment) are copied with their
relative paths; the media files themselves are for `rsync` (README). PostgreSQL is
backed up with `pg_dump` instead.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Final

from server.config import Settings
from server.dblock import DatabaseLock, DatabaseLocked, sqlite_path

DATABASE_FILE: Final = "vwin.db"
MANIFESTS_DIR: Final = "manifests"
INFO_FILE: Final = "backup.json"


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of `source` into a new file `target` (online-backup API)."""
    src = sqlite3.connect(source)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)  # all pages in one step: one snapshot, however busy the writer
            check = dst.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"the copy of {source} fails its integrity check: {check}")
        finally:
            dst.close()
    finally:
        src.close()


def _copy_manifests(source: Path, target: Path, overwrite: bool) -> int:
    count = 0
    if not source.is_dir():
        return 0
    for manifest in sorted(source.rglob("*.json")):
        relative = manifest.relative_to(source)
        dest = target / relative
        if dest.exists() and not overwrite:
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(manifest, dest)
        count += 1
    return count


def _database_of(settings: Settings) -> Path:
    path = sqlite_path(settings.storage.url)
    if path is None:
        raise BackupError("the database is PostgreSQL: back it up with pg_dump (README "
                          "\"Backup and restore\"); `vwin backup` copies embedded SQLite only")
    return path


def backup(settings: Settings, directory: Path) -> str:
    """Copy the database and the manifests into `directory` (new or empty)."""
    database = _database_of(settings)
    if not database.exists():
        raise BackupError(f"no database at {database}")
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty: back up into a new directory")
    directory.mkdir(parents=True, exist_ok=True)
    _copy_database(database, directory / DATABASE_FILE)
    manifests = _copy_manifests(Path(settings.recording.dir), directory / MANIFESTS_DIR,
                                overwrite=False)
    info = {"created_at": dt.datetime.now(dt.UTC).isoformat(), "database": str(database),
            "recording_dir": settings.recording.dir, "manifests": manifests}
    (directory / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    return (f"backed up {database} ({(directory / DATABASE_FILE).stat().st_size} bytes) and "
            f"{manifests} manifest(s) into {directory}")


async def restore(settings: Settings, directory: Path, force: bool) -> str:
    """Put a backup back: refused while a server runs on the database."""
    database = _database_of(settings)
    copy = directory / DATABASE_FILE
    if not copy.exists():
        raise BackupError(f"{directory} holds no {DATABASE_FILE}: not a `vwin backup` directory")
    if database.exists() and not force:
        raise BackupError(f"{database} exists: restore into a new location, or add --force "
                          "to replace it")
    lock = DatabaseLock(settings.storage.url)
    try:
        await lock.acquire()
    except DatabaseLocked as exc:
        raise BackupError(f"{exc}; stop it before restoring") from None
    try:
        staged = database.with_name(database.name + ".restoring")
        staged.unlink(missing_ok=True)
        _copy_database(copy, staged)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                database.with_name(database.name + suffix).unlink()
        staged.replace(database)
        manifests = _copy_manifests(directory / MANIFESTS_DIR, Path(settings.recording.dir),
                                    overwrite=force)
    finally:
        await lock.release()
    return f"restored {database} and {manifests} manifest(s) from {directory}"
