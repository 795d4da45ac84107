"""Recorded sessions end to end: real aiortc parties, the real server, real `vwin recorder`
processes. What a manager relies on: every party's file exists and decodes, lasts as long
as the call, is listed with its manifest and streams with range requests (access logged);
a recorder killed mid-session leaves a decodable first segment, the log says so, and
another recorder records the rest in a second segment."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from server import keys
from server.auth import token_hash
from server.recording.embedded import RECORDING, new_recorder_token
from tests.helpers import add_terminal, bearer, eventually, quick_manager, quick_specialist
from tests.recording.analysis import decode_recording, segments_settled
from tests.rtc_peers import (
    VIDEO_FPS,
    RtcClient,
    recorder_handed_over,
    send_to,
    use_loopback_when_alone,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SECONDS = 3.0  # of media per segment: short calls keep the suite fast


@pytest.fixture
def routing_backend() -> str:
    return "memory"


class Recorders:
    """`vwin recorder` child processes against the test server; killed at the end."""

    def __init__(self, app: web.Application, url: str, directory: Path) -> None:
        self.app, self.url, self.directory = app, url, directory
        self.processes: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, name: str, capacity: int = 1) -> None:
        token = new_recorder_token()
        await self.app[keys.DB].add_recorder(name, token_hash(token))
        env = {**os.environ, "VWIN_RECORDING_TOKEN": token,
               "VWIN_RECORDING_DIR": str(self.directory)}
        self.processes[name] = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "server.cli", "recorder", "--url", self.url,
            "--capacity", str(capacity), cwd=ROOT, env=env)
        pool = self.app[RECORDING].setup
        assert pool is not None

        async def joined() -> bool:
            assert self.processes[name].returncode is None, "the recorder process exited"
            return name in {r.name for r in await pool.pool.recorders()}

        await eventually(joined, timeout=30)

    async def close(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.kill()
            await process.wait()


@pytest.fixture
async def setup(aiohttp_client: Any, make_app: Callable[..., web.Application],
                tmp_path: Path) -> AsyncIterator[tuple[Any, Recorders, list[RtcClient]]]:
    use_loopback_when_alone()
    directory = tmp_path / "recordings"
    client = await aiohttp_client(make_app(recording={
        "enabled": True, "local_recorder": False, "dir": str(directory)}))
    recorders = Recorders(client.server.app, str(client.make_url("/ws")), directory)
    parties: list[RtcClient] = []
    yield client, recorders, parties
    for party in parties:
        await party.close()
    await recorders.close()


async def _call(client: Any, parties: list[RtcClient]) -> tuple[dict[str, Any], str]:
    app = client.server.app
    specialist = await RtcClient.open(client, await quick_specialist(app, "li", {"tax": 1}))
    parties.append(specialist)
    await specialist.available()
    terminal = await RtcClient.open(client, await add_terminal(app, "T1"))
    parties.append(terminal)
    await terminal.send({"type": "call.request", "queue": "tax"})
    queued = await terminal.recv("call.queued")
    await specialist.recv("call.offered")
    await specialist.send({"type": "call.accept", "call_id": queued["call_id"]})
    connected = await terminal.recv("call.connected")
    assert (await specialist.recv("call.connected"))["recording"] is True
    assert connected["recording"] is True
    [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
    return connected, recorder


async def _rows(client: Any, session_id: str, states: dict[int, str]) -> list[dict[str, Any]]:
    """The session's recordings once every segment is in the expected state."""
    auth = bearer(await quick_manager(client.server.app, "boss"))
    found: list[dict[str, Any]] = []

    async def ready() -> bool:
        nonlocal found
        detail = await (await client.get(f"/api/sessions/{session_id}", headers=auth)).json()
        found = detail["recordings"]
        return segments_settled(found, 2, states)

    await eventually(ready, timeout=30)
    return found


async def hang_up(client: Any, parties: list[RtcClient], connected: dict[str, Any]
                 ) -> list[dict[str, Any]]:
    """The specialist hangs up, both parties close their media: the complete segment of
    each, once settled."""
    await parties[1].send({"type": "call.hangup", "call_id": connected["call_id"]})
    for party in parties:
        await party.recv("call.ended")
        await party.hang_up_media()
    rows = await _rows(client, connected["session_id"], {1: "complete"})
    assert {r["participant_id"] for r in rows} == {p.me for p in parties}
    return rows


async def test_every_party_is_recorded_and_streamed_to_managers(setup: Any) -> None:
    client, recorders, parties = setup
    app = client.server.app
    await recorders.start("rec-a")
    connected, recorder = await _call(client, parties)
    await send_to(parties, connected["call_id"], recorder, SECONDS)
    hung_up_at = time.time()
    rows = await hang_up(client, parties, connected)
    for row in rows:
        path = recorders.directory / row["path"]
        decoded = decode_recording(path)
        assert decoded.codecs == {"video": "vp8", "audio": "opus"} == row["codecs"]
        assert decoded.frames["video"] >= SECONDS * VIDEO_FPS * 0.8
        assert decoded.frames["audio"] > 100
        expected = hung_up_at - row["started_at_unix"]
        assert abs(row["duration_s"] - expected) < 0.5, (row["duration_s"], expected)
        assert abs(decoded.duration_s - row["duration_s"]) < 0.5
        assert row["size_bytes"] == path.stat().st_size

    row = rows[0]
    boss = bearer(await quick_manager(app, "auditor"))
    ranged = await client.get(row["url"], headers={**boss, "Range": "bytes=0-99"})
    assert ranged.status == 206 and ranged.headers["Content-Type"] == "video/webm"
    assert ranged.headers["Content-Range"] == f"bytes 0-99/{row['size_bytes']}"
    assert await ranged.read() == (recorders.directory / row["path"]).read_bytes()[:100]
    whole = await client.get(row["url"], headers=boss)
    assert whole.status == 200 and len(await whole.read()) == row["size_bytes"]
    specialist = bearer(await quick_specialist(app, "wang", {"tax": 1}))
    assert (await client.get(row["url"], headers=specialist)).status == 403
    access = await (await client.get(
        f"/api/sessions/{connected['session_id']}/recording-access", headers=boss)).json()
    assert [(a["username"], a["byte_range"]) for a in access["access"]] == [
        ("auditor", "bytes=0-99"), ("auditor", None)]
    events = [e["type"] for e in (await (await client.get(
        f"/api/sessions/{connected['session_id']}", headers=boss)).json())["events"]]
    assert "recording_started" in events and "recording_stopped" in events


async def test_killed_recorder_leaves_a_playable_segment_and_another_takes_over(
        setup: Any) -> None:
    client, recorders, parties = setup
    await recorders.start("rec-a")
    await recorders.start("rec-b")
    connected, first = await _call(client, parties)
    assert first == "recorder:rec-a"
    call_id = connected["call_id"]
    await send_to(parties, call_id, first, SECONDS)
    recorders.processes["rec-a"].send_signal(signal.SIGKILL)
    await recorder_handed_over(parties, first, "recorder:rec-b")
    await send_to(parties, call_id, "recorder:rec-b", SECONDS)
    await parties[1].send({"type": "call.hangup", "call_id": call_id})
    for party in parties:
        await party.recv("call.ended")
        await party.hang_up_media()

    rows = await _rows(client, connected["session_id"], {1: "interrupted", 2: "complete"})
    for row in rows:
        decoded = decode_recording(recorders.directory / row["path"])
        assert decoded.codecs == {"video": "vp8", "audio": "opus"}
        assert decoded.duration_s > SECONDS - 2.5, (row["segment"], decoded.duration_s)
        assert row["recorder"] == ("rec-a" if row["segment"] == 1 else "rec-b")
    auth = bearer(await quick_manager(client.server.app, "boss2"))
    detail = await (await client.get(f"/api/sessions/{connected['session_id']}",
                                     headers=auth)).json()
    recording = [(e["type"], e["data"].get("recorder")) for e in detail["events"]
                 if e["type"].startswith("recording_")]
    assert recording == [
        ("recording_started", "recorder:rec-a"), ("recording_interrupted", "recorder:rec-a"),
        ("recording_started", "recorder:rec-b"), ("recording_stopped", "recorder:rec-b")]


async def test_a_party_that_hangs_up_its_media_has_its_segment_closed_without_a_stop(
        setup: Any) -> None:
    """The parties close their connections to the recorder while the call goes on (as they
    do at the end of a call whose `record.stop` was lost with a node): the recorder closes
    and reports each segment by itself, complete and playable."""
    client, recorders, parties = setup
    await recorders.start("rec-a")
    connected, recorder = await _call(client, parties)
    await send_to(parties, connected["call_id"], recorder, SECONDS)
    for party in parties:
        await party.hang_up_media()

    rows = await _rows(client, connected["session_id"], {1: "complete"})
    assert {r["participant_id"] for r in rows} == {p.me for p in parties}
    for row in rows:
        decoded = decode_recording(recorders.directory / row["path"])
        assert decoded.frames["video"] >= SECONDS * VIDEO_FPS * 0.8
