"""Recorder credentials, recorded segments (one row per party per segment), who watched them.

A segment row is created when the recorder starts writing it (`recording`) and completed
from the recorder's manifest (`complete` / `failed`); a recorder lost mid-session leaves
`interrupted`; the retention job ends rows as `deleted`. Paths are relative to
`[recording] dir`, so the server resolves them against its own copy of the setting.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Collection
from typing import Any, Final

import msgspec
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from server.storage.engine import StoreBase, require_aware
from server.storage.errors import AlreadyExists, InvalidRecord
from server.storage.schema import recorders, recording_access, recordings, session_events
from signaling.events import RECORDING_INTERRUPTED, RECORDING_STARTED, RECORDING_STOPPED
from signaling.identity import Role, principal_of
from signaling.messages import RecordingManifest
from signaling.recorders import SegmentRefused, Told

RECORDING: Final = "recording"
COMPLETE: Final = "complete"
FAILED: Final = "failed"
INTERRUPTED: Final = "interrupted"
DELETED: Final = "deleted"
_CLOSED_STATE = {"finished": COMPLETE, "failed": FAILED}


class Recording(msgspec.Struct, kw_only=True):
    """One party's segment of one session."""

    id: str
    session_id: str
    participant_id: str
    segment: int
    recorder: str
    path: str
    state: str
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    duration_s: float | None
    codecs: dict[str, str]
    offsets: dict[str, float]
    size_bytes: int | None
    sha256: str | None
    error: str | None
    created_at: dt.datetime
    deleted_at: dt.datetime | None


class RecordingAccess(msgspec.Struct, kw_only=True):
    recording_id: str
    username: str
    at: dt.datetime
    remote: str | None
    byte_range: str | None


def _recording(row: Any) -> Recording:
    return Recording(**{name: getattr(row, name) for name in Recording.__struct_fields__})


def _check_path(path: str) -> None:
    """Stored paths are relative and stay inside the recording directory."""
    if path.startswith("/") or ".." in path.split("/") or "\\" in path:
        raise SegmentRefused(f"recording path {path!r} must be relative, without '..'")


class RecordingStore(StoreBase):
    """Recorders, recordings and the access log; also the switchboard's `RecordingCatalog`."""

    # ---- recorder credentials -----------------------------------------------------------

    async def add_recorder(self, name: str, token_hash: str) -> None:
        """Register a recorder credential. Raises `AlreadyExists`, `InvalidRecord`."""
        if not name or name != name.strip() or ":" in name:
            raise InvalidRecord(f"bad recorder name {name!r}")
        try:
            async with self._write() as conn:
                await conn.execute(recorders.insert().values(
                    name=name, token_hash=token_hash, created_at=self._clock()))
        except IntegrityError:
            raise AlreadyExists(f"recorder {name!r} already exists") from None

    async def recorder_by_token_hash(self, token_hash: str) -> str | None:
        """The recorder name a token opens; None when unknown or revoked."""
        query = sa.select(recorders.c.name).where(
            recorders.c.token_hash == token_hash, recorders.c.revoked_at.is_(None))
        async with self._read() as conn:
            name: str | None = await conn.scalar(query)
        return name

    async def recorder_names(self) -> list[str]:
        """Names of the recorder credentials not revoked, sorted."""
        query = sa.select(recorders.c.name).where(recorders.c.revoked_at.is_(None))
        async with self._read() as conn:
            return sorted(str(n) for n in await conn.scalars(query))

    async def revoke_recorder(self, name: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                recorders.update().where(recorders.c.name == name, recorders.c.revoked_at.is_(None))
                .values(revoked_at=self._clock()))
        return bool(result.rowcount)

    # ---- the catalog (RecordingCatalog) ---------------------------------------------------

    async def segment_started(self, *, session_id: str, participant_id: str, segment: int,
                              recorder: str, path: str) -> None:
        _check_path(path)
        try:
            await self._written(lambda conn: conn.execute(recordings.insert().values(
                id="rec_" + secrets.token_hex(8), session_id=session_id,
                participant_id=participant_id, segment=segment, recorder=recorder, path=path,
                state=RECORDING, codecs={}, offsets={}, stats={},
                created_at=self._clock())), "opening a segment")
        except IntegrityError:
            if await self._opened(session_id, participant_id, segment, recorder, path):
                return  # the report again (its first reply was lost): nothing to add
            raise SegmentRefused(f"segment {segment} of {participant_id} in session "
                                 f"{session_id} exists, or the session does not") from None

    async def recorded_by(self, session_id: str, recorder: str) -> bool:
        """Whether the session's log has `recorder` (its participant id) told to record it."""
        query = sa.select(session_events.c.data).where(
            session_events.c.session_id == session_id,
            session_events.c.type == RECORDING_STARTED)
        async with self._read() as conn:
            return any((row.data or {}).get("recorder") == recorder
                       for row in await conn.execute(query))

    async def unnamed_gaps(self, recorder: str, since: dt.datetime,
                           also: Collection[str] = ()) -> list[Told]:
        """Sessions the lost `recorder` (its name) was told to record, its last
        `recording_started` in each, that it closed no segment of (or left one open), and
        whose log names no interruption of it since: among the sessions of its
        `recording_started` or `recording_stopped` logged since `since`, and `also`. Indexed
        reads only: the log by time, then those sessions' events and segments."""
        require_aware(since=since)
        who = principal_of(Role.RECORDER, recorder)
        kinds = (RECORDING_STARTED, RECORDING_STOPPED)
        async with self._read() as conn:
            recent = await conn.execute(sa.select(
                session_events.c.session_id, session_events.c.data).where(
                session_events.c.ts >= since, session_events.c.type.in_(kinds)))
            sessions = {str(r.session_id) for r in recent
                        if r.session_id is not None and (r.data or {}).get("recorder") == who}
            sessions.update(also)
            if not sessions:
                return []
            events = await conn.execute(sa.select(
                session_events.c.session_id, session_events.c.call_id,
                session_events.c.type, session_events.c.data).where(
                session_events.c.session_id.in_(sorted(sessions)),
                session_events.c.type.in_((RECORDING_STARTED, RECORDING_INTERRUPTED)))
                .order_by(session_events.c.id))
            told: dict[str, tuple[Told, int] | None] = {}  # None: named already
            for event in events:
                data = event.data or {}
                if data.get("recorder") != who:
                    continue
                last = told.get(event.session_id)
                if event.type == RECORDING_STARTED:
                    told[event.session_id] = (
                        Told(session_id=event.session_id, call_id=event.call_id),
                        int(data["segment"]))
                elif data.get("segment") is None or last is None or last[1] == data["segment"]:
                    told[event.session_id] = None  # (not an earlier segment's, named late)
            pending = {t.session_id: segment for t, segment in filter(None, told.values())}
            closed = await conn.execute(sa.select(
                recordings.c.session_id, recordings.c.segment, recordings.c.state).where(
                recordings.c.session_id.in_(sorted(pending)),
                recordings.c.recorder == recorder))
            states: dict[str, set[str]] = {}
            for row in closed:
                if pending[row.session_id] == row.segment:
                    states.setdefault(row.session_id, set()).add(row.state)
        return [one for one, _ in filter(None, told.values())
                if RECORDING in states.get(one.session_id, set())
                or not states.get(one.session_id, set()) & {COMPLETE, FAILED}]

    async def _opened(self, session_id: str, participant_id: str, segment: int, recorder: str,
                      path: str) -> bool:
        """The segment row exists as this recorder opened it at this path."""
        query = sa.select(recordings.c.id).where(
            recordings.c.session_id == session_id,
            recordings.c.participant_id == participant_id,
            recordings.c.segment == segment, recordings.c.recorder == recorder,
            recordings.c.path == path)
        async with self._read() as conn:
            return await conn.scalar(query) is not None

    async def segment_closed(self, *, session_id: str, participant_id: str, recorder: str,
                             manifest: RecordingManifest) -> bool:
        """True; False when the same report closed the segment already (a recorder sends
        its recent reports again on a new connection: `recorder.service.REPORTS_KEPT_S`)."""
        _check_path(manifest.path)
        started = (None if manifest.started_at_unix is None
                   else dt.datetime.fromtimestamp(manifest.started_at_unix, dt.UTC))
        query = recordings.update().where(
            recordings.c.session_id == session_id,
            recordings.c.participant_id == participant_id,
            recordings.c.segment == manifest.segment,
            recordings.c.recorder == recorder,
            recordings.c.state.in_((RECORDING, INTERRUPTED)),
        ).values(
            state=_CLOSED_STATE[manifest.state], path=manifest.path, started_at=started,
            ended_at=self._clock(), duration_s=manifest.duration_s, codecs=manifest.codecs,
            offsets=manifest.offsets, size_bytes=manifest.size_bytes, sha256=manifest.sha256,
            error=manifest.reason, stats=manifest.stats)
        result = await self._written(lambda conn: conn.execute(query), "closing a segment")
        if result.rowcount:
            return True
        same_hash = (recordings.c.sha256.is_(None) if manifest.sha256 is None
                     else recordings.c.sha256 == manifest.sha256)
        closed = sa.select(recordings.c.id).where(
            recordings.c.session_id == session_id,
            recordings.c.participant_id == participant_id,
            recordings.c.segment == manifest.segment, recordings.c.recorder == recorder,
            recordings.c.state == _CLOSED_STATE[manifest.state],
            recordings.c.path == manifest.path, same_hash)
        async with self._read() as conn:
            if await conn.scalar(closed) is not None:
                return False
        raise SegmentRefused(f"no open segment {manifest.segment} of {participant_id} "
                             f"in session {session_id} by recorder {recorder}")

    async def segments_interrupted(self, *, session_id: str | None, recorder: str) -> int:
        rows = await self.interrupt_segments(session_id, recorder)
        return len(rows)

    async def interrupt_segments(self, session_id: str | None, recorder: str
                                 ) -> list[Recording]:
        """End the recorder's open segments of the session (of every session: None) as
        interrupted; returns them."""
        where = (recordings.c.recorder == recorder, recordings.c.state == RECORDING,
                 *(() if session_id is None else (recordings.c.session_id == session_id,)))
        async def interrupt(conn: AsyncConnection) -> list[Recording]:
            rows = (await conn.execute(sa.select(recordings).where(*where))).all()
            await conn.execute(recordings.update().where(*where).values(
                state=INTERRUPTED, ended_at=self._clock(), error="recorder lost"))
            return [_recording(row) for row in rows]
        return await self._written(interrupt, "interrupting segments")

    async def describe_file(self, recording_id: str, *, size_bytes: int | None,
                            sha256: str | None, duration_s: float | None) -> None:
        """What the server found in an interrupted segment's file (the recorder never said)."""
        async with self._write() as conn:
            await conn.execute(recordings.update().where(
                recordings.c.id == recording_id, recordings.c.state == INTERRUPTED,
            ).values(size_bytes=size_bytes, sha256=sha256, duration_s=duration_s))

    # ---- reading, access, retention ----------------------------------------------------

    async def get_recording(self, recording_id: str) -> Recording | None:
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(recordings).where(recordings.c.id == recording_id))).first()
        return None if row is None else _recording(row)

    async def list_recordings(self, session_id: str | None = None) -> list[Recording]:
        """A session's segments (all sessions' if None) by participant and segment."""
        query = sa.select(recordings).order_by(
            recordings.c.session_id, recordings.c.participant_id, recordings.c.segment)
        if session_id is not None:
            query = query.where(recordings.c.session_id == session_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_recording(row) for row in rows]

    async def log_access(self, recording_id: str, username: str, remote: str | None,
                         byte_range: str | None) -> None:
        async with self._write() as conn:
            await conn.execute(recording_access.insert().values(
                recording_id=recording_id, username=username, at=self._clock(),
                remote=remote, byte_range=byte_range))

    async def list_access(self, session_id: str) -> list[RecordingAccess]:
        """Who fetched the session's recordings, oldest first."""
        query = (sa.select(recording_access).join(
            recordings, recordings.c.id == recording_access.c.recording_id)
            .where(recordings.c.session_id == session_id).order_by(recording_access.c.id))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [RecordingAccess(recording_id=r.recording_id, username=r.username, at=r.at,
                                remote=r.remote, byte_range=r.byte_range) for r in rows]

    async def expired_recordings(self, before: dt.datetime) -> list[Recording]:
        """Segments created before `before` whose file has not been deleted."""
        require_aware(before=before)
        query = sa.select(recordings).where(
            recordings.c.created_at < before, recordings.c.deleted_at.is_(None),
            recordings.c.state != RECORDING).order_by(recordings.c.created_at)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_recording(row) for row in rows]

    async def mark_deleted(self, recording_id: str, when: dt.datetime) -> None:
        require_aware(when=when)
        async with self._write() as conn:
            await conn.execute(recordings.update().where(recordings.c.id == recording_id)
                               .values(state=DELETED, deleted_at=when))
