"""Recordings on disk after the call: `vwin recording verify`, retention, the embedded recorder."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server.recording.catalog import purge_expired
from server.recording.embedded import RECORDING
from server.storage.db import Database
from signaling import events as ev
from signaling.events import LogEvent
from signaling.messages import RecordingManifest
from tests.helpers import eventually

NOW = dt.datetime(2026, 5, 11, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def routing_backend() -> str:
    return "memory"


async def _segment(db: Database, directory: Path, session: str, party: str,
                   content: bytes) -> str:
    """A closed segment as a recorder leaves it: the file and its manifest in the DB."""
    await db.append([LogEvent(type=ev.QUEUED, ts=NOW, session_id=session, call_id="c-" + session,
                              data={"queue": "tax"})])
    relative = f"2026/05/11/{session}/{party}-1.webm"
    (directory / relative).parent.mkdir(parents=True, exist_ok=True)
    (directory / relative).write_bytes(content)
    await db.segment_started(session_id=session, participant_id=party, segment=1,
                             recorder="rec-a", path=relative)
    await db.segment_closed(session_id=session, participant_id=party, recorder="rec-a",
                            manifest=RecordingManifest(
                                segment=1, state="finished", path=relative, duration_s=1.0,
                                size_bytes=len(content),
                                sha256=hashlib.sha256(content).hexdigest()))
    return relative


def _vwin(*args: str, env: dict[str, str]) -> tuple[int, str]:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    return done.returncode, done.stdout + done.stderr


async def test_verify_reports_altered_and_missing_files(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"
    directory = tmp_path / "recordings"
    db = await Database.connect(url)
    await db.upgrade()
    try:
        kept = await _segment(db, directory, "s1", "terminal-T1", b"webm one")
        altered = await _segment(db, directory, "s2", "terminal-T1", b"webm two")
        missing = await _segment(db, directory, "s3", "terminal-T1", b"webm three")
    finally:
        await db.close()
    import os

    env = {**os.environ, "VWIN_STORAGE_URL": f'"{url}"', "VWIN_RECORDING_DIR": str(directory)}
    code, out = await asyncio.to_thread(_vwin, "recording", "verify", env=env)
    assert code == 0 and "3 recording(s) and 0 document(s) checked, 0 missing or altered" \
        in out, out
    (directory / altered).write_bytes(b"webm tw0")  # same size, other bytes
    (directory / missing).unlink()
    code, out = await asyncio.to_thread(_vwin, "recording", "verify", env=env)
    assert code == 1, out
    lines = {line.split()[3]: line.split()[0] for line in out.splitlines()
             if line.startswith(("ok", "ALTERED", "MISSING"))}
    assert lines == {"s1": "ok", "s2": "ALTERED", "s3": "MISSING"}, out
    assert kept


async def test_retention_deletes_old_files_and_logs_it(tmp_path: Path) -> None:
    clock = [NOW - dt.timedelta(days=40)]
    db = await Database.connect(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}",
                                clock=lambda: clock[0])
    await db.upgrade()
    directory = tmp_path / "recordings"
    try:
        old = await _segment(db, directory, "old", "terminal-T1", b"old")
        clock[0] = NOW - dt.timedelta(days=5)
        new = await _segment(db, directory, "new", "terminal-T1", b"new")
        assert await purge_expired(db, directory, 30, NOW) == 1
        assert not (directory / old).exists() and (directory / new).exists()
        states = {r.session_id: r.state for r in await db.list_recordings()}
        assert states == {"old": "deleted", "new": "complete"}
        detail = await db.get_session("old")
        assert detail is not None
        [deleted] = [e for e in detail.events if e.type == ev.RECORDING_DELETED]
        assert deleted.data["reason"] == "retention" and deleted.data["path"] == old
        assert await purge_expired(db, directory, 30, NOW) == 0
    finally:
        await db.close()


async def test_embedded_recorder_starts_and_comes_back_after_a_crash(
        aiohttp_client: Any, make_app: Callable[..., web.Application], tmp_path: Path,
        unused_tcp_port: int) -> None:
    app = make_app(server={"port": unused_tcp_port, "node_id": "n1"},
                   recording={"enabled": True, "dir": str(tmp_path / "rec")})
    await aiohttp_client(app, server_kwargs={"port": unused_tcp_port})
    services = app[RECORDING]
    assert services.setup is not None

    async def live() -> bool:
        assert services.setup is not None
        return [r.name for r in await services.setup.pool.recorders()] == ["local-n1"]

    await eventually(live, timeout=30)
    local = services.local
    assert local is not None and local.process is not None
    local.process.send_signal(signal.SIGKILL)

    async def restarted() -> bool:
        return local.starts == 2 and await live()

    await eventually(restarted, timeout=30)
