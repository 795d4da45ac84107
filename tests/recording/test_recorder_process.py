"""A recorder in its own process (``recorder.stdio``): kill -9 and a full disk."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.recording.analysis import decode_recording
from tests.recording.synthetic import connect_party, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


class RecorderProcess:
    """Talks the stdio JSON-line protocol to a child recorder process."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.reason: str | None = None

    @classmethod
    async def start(cls, max_file_bytes: int | None = None) -> RecorderProcess:
        def limit_file_size() -> None:
            if max_file_bytes is not None:
                resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))

        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "recorder.stdio", cwd=ROOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            preexec_fn=limit_file_size, limit=1 << 22,
        )
        recorder = cls(process)
        assert (await recorder.receive())["ready"] is True
        return recorder

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def receive(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout=30)
        assert line, "recorder process exited"
        reply: dict[str, Any] = json.loads(line)
        return reply


class _OfferTarget:
    """Adapter so ``connect_party`` can offer to the child process."""

    def __init__(self, recorder: RecorderProcess, directory: Path) -> None:
        self.recorder = recorder
        self.directory = directory
        self.reason: str | None = None

    async def handle_offer(self, sdp: str) -> str | None:
        await self.recorder.send({
            "op": "offer", "key": "kiosk", "directory": str(self.directory),
            "session_id": "session-1", "participant_id": "kiosk", "segment": 1, "sdp": sdp,
        })
        reply = await self.recorder.receive()
        self.reason = reply["reason"]
        answer: str | None = reply["answer"]
        return answer


def _recording(directory: Path) -> Path:
    [path] = directory.glob("*/*/*/session-1/kiosk-1.webm")
    return path


async def test_kill_9_leaves_a_decodable_file(tmp_path: Path) -> None:
    recorder = await RecorderProcess.start()
    pc, _tracks = await connect_party(_OfferTarget(recorder, tmp_path), time.time() + 0.5, 30.0)
    started = time.time()
    await wait_until(lambda: _recording(tmp_path).stat().st_size > 20_000 and
                     time.time() - started > 4.0, timeout=30, what="4 s of recording")
    recorder.process.send_signal(signal.SIGKILL)
    await recorder.process.wait()
    killed_after = time.time() - started
    await pc.close()
    decoded = decode_recording(_recording(tmp_path))
    assert decoded.codecs == {"video": "vp8", "audio": "opus"}
    assert decoded.frames["video"] > 0 and decoded.frames["audio"] > 0
    assert decoded.duration_s >= killed_after - 3.0, (decoded.duration_s, killed_after)


async def test_full_disk_mid_session_becomes_failed_state(tmp_path: Path) -> None:
    recorder = await RecorderProcess.start(max_file_bytes=30_000)
    pc, _tracks = await connect_party(_OfferTarget(recorder, tmp_path), time.time() + 0.5, 30.0)

    async def state() -> dict[str, Any]:
        await recorder.send({"op": "status"})
        reply: dict[str, Any] = (await recorder.receive())["recorders"]["kiosk"]
        return reply

    deadline = time.monotonic() + 30
    while (status := await state())["state"] != "failed":
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.2)
    assert "File too large" in status["reason"]
    await recorder.send({"op": "close", "key": "kiosk"})
    manifest = (await recorder.receive())["manifest"]
    assert manifest["state"] == "failed" and "cannot write" in manifest["reason"]
    await recorder.send({"op": "status"})
    assert (await recorder.receive())["recorders"] == {}, "recorder process must survive"
    await recorder.send({"op": "exit"})
    assert await asyncio.wait_for(recorder.process.wait(), timeout=30) == 0
    await pc.close()
    assert os.path.getsize(_recording(tmp_path)) <= 30_000
