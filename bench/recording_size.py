"""Recording disk per participant: MB per hour of a real Chromium kiosk and console call.

Debian's Chromium (fake 640x480 camera and microphone) calls through the real server;
the embedded `vwin recorder` records both parties (VP8 + Opus passed through, no
transcoding). Figures: each file's size over its duration, as MB (10^6 bytes) per hour.
Baseline in the same run: an aiortc party's synthetic 160x120 camera (tests.rtc_peers),
what the test suite records. The kiosk's camera is Chromium's built-in fake device (a
simple moving picture) and then a file of drifting noise, the upper bound. Usage::

    .venv/bin/python -m bench.recording_size [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from playwright.sync_api import sync_playwright

from server.app import create_app
from server.recording.embedded import RECORDING
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.flows import make_world, start_call
from tests.browser.live import LiveServer, Pages
from tests.cluster.procs import free_port
from tests.helpers import add_terminal, make_settings, quick_manager, quick_specialist
from tests.rtc_peers import RtcClient, send_to, use_loopback_when_alone


def _server(tmp: Path) -> LiveServer:
    port = free_port()
    settings = make_settings(f"sqlite+aiosqlite:///{tmp / 'vwin.db'}",
                             server={"port": port, "idle_timeout_s": 3600},  # aiortc: no pings
                             recording={"enabled": True, "dir": str(tmp / "recordings")})
    server = LiveServer(create_app(settings), port)
    server.start()
    server.run(_recorder_joined(server), timeout=90)
    return server


async def _recorder_joined(server: LiveServer) -> None:
    setup = server.app[RECORDING].setup
    assert setup is not None
    while not await setup.pool.recorders():
        await asyncio.sleep(0.1)


async def _recordings(server: LiveServer, parties: int) -> list[dict[str, Any]]:
    auth = {"Authorization": f"Bearer {await quick_manager(server.app, 'bench')}"}
    async with aiohttp.ClientSession(server.url, headers=auth) as http:
        for _ in range(600):
            sessions = (await (await http.get("/api/sessions")).json())["sessions"]
            if sessions:
                detail = await (await http.get(f"/api/sessions/{sessions[0]['id']}")).json()
                rows: list[dict[str, Any]] = detail["recordings"]
                if len(rows) == parties and all(r["state"] == "complete" for r in rows):
                    return rows
            await asyncio.sleep(0.2)
    raise TimeoutError("the recordings did not complete")


def _rate(row: dict[str, Any]) -> float:
    return float(row["size_bytes"]) / float(row["duration_s"]) * 3600 / 1e6


def noisy_camera(path: Path, frames: int = 90) -> Path:
    """A 640x480 30 fps Y4M of drifting noise: no encoder predicts it, so Chromium sends
    as much as its bitrate ceiling allows (the upper bound of what a camera costs)."""
    width, height = 640, 480
    tile = os.urandom(width * height * 2)
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode())
        for i in range(frames):
            start = (i * 7919) % (width * height)
            out.write(b"FRAME\n" + tile[start:start + width * height]
                      + b"\x80" * (width * height // 2))
    return path


def chromium_call(seconds: float, camera: Path | None = None) -> list[tuple[str, float, float]]:
    args = [*CHROMIUM_ARGS]
    if camera is not None:
        args.append(f"--use-file-for-fake-video-capture={camera}")
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(Path(tmp))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
                pages = Pages(browser, server)
                call = start_call(make_world(server, pages))
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    call.kiosk.wait_for_timeout(500)
                call.console.locator("#hang-up").click()
                rows = server.run(_recordings(server, 2), timeout=180)
                pages.close()
                browser.close()
        finally:
            server.stop()
    return [(r["participant_id"], float(r["duration_s"]), _rate(r)) for r in rows]


async def _aiortc_call(server: LiveServer, seconds: float) -> list[dict[str, Any]]:
    use_loopback_when_alone()
    async with aiohttp.ClientSession(server.url) as http:
        specialist = await RtcClient.open(http, await quick_specialist(server.app, "li",
                                                                       {"tax": 1}))
        terminal = await RtcClient.open(http, await add_terminal(server.app, "T1"))
        try:
            await specialist.available()
            await terminal.send({"type": "call.request", "queue": "tax"})
            queued = await terminal.recv("call.queued")
            await specialist.send({"type": "call.accept", "call_id": queued["call_id"]})
            connected = await terminal.recv("call.connected", timeout=60)
            await specialist.recv("call.connected")
            [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
            await send_to([terminal, specialist], connected["call_id"], recorder, seconds,
                          timeout=seconds + 60)
            await terminal.send({"type": "call.hangup", "call_id": connected["call_id"]})
            await terminal.recv("call.ended")
        finally:
            await specialist.close()
            await terminal.close()
    return await _recordings(server, 2)


def aiortc_call(seconds: float) -> list[tuple[str, float, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        server = _server(Path(tmp))
        try:
            rows = server.run(_aiortc_call(server, seconds), timeout=seconds + 240)
        finally:
            server.stop()
    return [(r["participant_id"], float(r["duration_s"]), _rate(r)) for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    print("| source | participant | recorded s | MB per hour |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        camera = noisy_camera(Path(tmp) / "noise.y4m")
        for name, run in (("aiortc 160x120 (baseline)", aiortc_call),
                          ("Chromium, built-in fake camera", chromium_call),
                          ("Chromium, 640x480 noise camera (upper bound)",
                           lambda s: chromium_call(s, camera))):
            for participant, duration, rate in run(args.seconds):
                print(f"| {name} | {participant} | {duration:.1f} | {rate:.0f} |", flush=True)


if __name__ == "__main__":
    main()
