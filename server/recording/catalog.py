"""The server's side of recordings on disk: the catalog, retention and verification.

`FileCatalog` is the switchboard's `RecordingCatalog` over the database; when a recorder
is lost it also measures what the interrupted files hold (the recorder cannot say any
more), in the background so that handing the session on is not delayed. Paths in the
database are relative to `[recording] dir`; `resolve` refuses any that would leave it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path

import av

from recorder.manifest import sha256_file
from server.storage.db import Database
from server.storage.documents import Document
from server.storage.recordings import COMPLETE, INTERRUPTED, Recording
from signaling import events as ev
from signaling.messages import RecordingManifest
from signaling.recorders import Told

log = logging.getLogger(__name__)


def resolve(directory: Path, relative: str) -> Path:
    """The file of a stored relative path; ValueError if it points outside `directory`."""
    root = directory.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"recording path {relative!r} leaves {root}")
    return path


def measure(path: Path) -> tuple[int, str, float]:
    """Size, SHA-256 and duration (by demuxing, no decoding) of a recording file."""
    size = path.stat().st_size
    duration = 0.0
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.pts is not None and packet.time_base is not None:
                end = packet.pts + (packet.duration or 0)
                duration = max(duration, float(end * packet.time_base))
    return size, sha256_file(path), round(duration, 3)


class FileCatalog:
    """`RecordingCatalog` backed by the database and the recording directory."""

    def __init__(self, db: Database, directory: Path) -> None:
        self.db = db
        self.directory = directory
        self._tasks: set[asyncio.Task[None]] = set()
        self.frames_dropped = 0  # reported by recorders in closed segments' manifests (metrics)
        self.segments_closed: dict[str, int] = {}  # by manifest state (metrics)

    async def segment_started(self, *, session_id: str, participant_id: str, segment: int,
                              recorder: str, path: str) -> None:
        await self.db.segment_started(session_id=session_id, participant_id=participant_id,
                                      segment=segment, recorder=recorder, path=path)

    async def segment_closed(self, *, session_id: str, participant_id: str, recorder: str,
                             manifest: RecordingManifest) -> bool:
        if not await self.db.segment_closed(session_id=session_id,
                                            participant_id=participant_id,
                                            recorder=recorder, manifest=manifest):
            return False
        dropped = manifest.stats.get("frames_dropped", 0)
        self.frames_dropped += dropped if isinstance(dropped, int) and dropped > 0 else 0
        self.segments_closed[manifest.state] = self.segments_closed.get(manifest.state, 0) + 1
        return True

    async def recorded_by(self, session_id: str, recorder: str) -> bool:
        return await self.db.recorded_by(session_id, recorder)

    async def unnamed_gaps(self, recorder: str, since: dt.datetime,
                           also: Collection[str] = ()) -> list[Told]:
        return await self.db.unnamed_gaps(recorder, since, also)

    async def segments_interrupted(self, *, session_id: str | None, recorder: str) -> int:
        rows = await self.db.interrupt_segments(session_id, recorder)
        for row in rows:
            task = asyncio.get_running_loop().create_task(self._describe(row))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(rows)

    async def _describe(self, row: Recording) -> None:
        try:
            size, sha256, duration = await asyncio.to_thread(
                measure, resolve(self.directory, row.path))
        except (OSError, ValueError, av.FFmpegError) as exc:
            log.warning("interrupted recording %s (%s) cannot be read here: %s",
                        row.id, row.path, exc)
            return
        await self.db.describe_file(row.id, size_bytes=size, sha256=sha256,
                                    duration_s=duration)
        log.info("interrupted recording %s keeps %.1f s (%d bytes)", row.id, duration, size)

    async def settle(self) -> None:
        """Wait for background measurements (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.settle()


async def purge_expired(db: Database, directory: Path, retention_days: int,
                        now: dt.datetime) -> int:
    """Delete recording files older than the retention period; each deletion is logged."""
    before = now - dt.timedelta(days=retention_days)
    deleted = 0
    for row in await db.expired_recordings(before):
        try:
            path = resolve(directory, row.path)
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            log.error("retention: cannot delete recording %s (%s): %s", row.id, row.path, exc)
            continue
        await db.mark_deleted(row.id, now)
        deleted_event = ev.RecordingDeleted(recording_id=row.id, path=row.path,
                                            reason="retention", retention_days=retention_days)
        await db.append([ev.log_event(deleted_event, now, session_id=row.session_id)])
        log.info("retention: deleted recording %s (%s) of session %s", row.id, row.path,
                 row.session_id)
        deleted += 1
    return deleted


async def retention_loop(db: Database, directory: Path, retention_days: int, interval_s: float,
                         clock: Callable[[], dt.datetime]) -> None:
    """The periodic retention job: once at start, then every `interval_s`."""
    while True:
        try:
            count = await purge_expired(db, directory, retention_days, clock())
            if count:
                log.info("retention: %d recording(s) older than %d days deleted", count,
                         retention_days)
            await purge_expired_documents(db, directory, retention_days, clock())
        except Exception:
            log.exception("retention job failed")
        await asyncio.sleep(interval_s)


async def purge_expired_documents(db: Database, directory: Path, retention_days: int,
                                  now: dt.datetime) -> int:
    """Delete the captured documents older than the recordings' retention period."""
    deleted = 0
    for row in await db.expired_documents(now - dt.timedelta(days=retention_days)):
        try:
            resolve(directory, row.path).unlink(missing_ok=True)
        except (OSError, ValueError) as exc:
            log.error("retention: cannot delete document %s (%s): %s", row.id, row.path, exc)
            continue
        await db.mark_document_deleted(row.id, now)
        log.info("retention: deleted document %s (%s) of session %s", row.id, row.path,
                 row.session_id)
        deleted += 1
    return deleted


@dataclass(frozen=True, slots=True)
class Finding:
    recording: Recording
    problem: str | None  # None: the file matches its manifest


def _problem(directory: Path, relative: str, size: int | None, sha256: str | None
             ) -> str | None:
    """None when the file has the size and SHA-256 stored for it; otherwise what is wrong."""
    try:
        path = resolve(directory, relative)
    except ValueError as exc:
        return str(exc)
    if not path.is_file():
        return "missing"
    if path.stat().st_size != size:
        return f"altered (size {path.stat().st_size}, stored {size})"
    if sha256_file(path) != sha256:
        return "altered (SHA-256 differs from the stored one)"
    return None


def _check(directory: Path, row: Recording) -> Finding:
    return Finding(row, _problem(directory, row.path, row.size_bytes, row.sha256))


async def verify(db: Database, directory: Path) -> list[Finding]:
    """Re-hash every kept recording that has a manifest hash; report missing or altered."""
    rows = [row for row in await db.list_recordings()
            if row.state in (COMPLETE, INTERRUPTED) and row.sha256 is not None]
    return [await asyncio.to_thread(_check, directory, row) for row in rows]


@dataclass(frozen=True, slots=True)
class DocumentFinding:
    document: Document
    problem: str | None  # None: the file matches its stored SHA-256


async def verify_documents(db: Database, directory: Path) -> list[DocumentFinding]:
    """Re-hash every captured document still kept; report missing or altered ones."""
    rows = [row for row in await db.list_documents() if row.deleted_at is None]
    return [DocumentFinding(row, await asyncio.to_thread(
        _problem, directory, row.path, row.size_bytes, row.sha256)) for row in rows]
