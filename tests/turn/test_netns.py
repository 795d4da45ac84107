"""A kiosk behind a firewall that drops all UDP and lets out only TCP to the server:
in its own network namespace (veth + nftables, made by the test), its call with a
specialist connects through TURN over TCP and is recorded by a real `vwin recorder`.

The kiosk offers one TURN URL, `turn:...?transport=tcp`: aiortc uses only the first
TURN URL it is given (browsers try them all)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from server.app import create_app
from tests.helpers import add_terminal, quick_specialist
from tests.recording.analysis import decode_recording
from tests.recording.test_recording_e2e import Recorders, _rows
from tests.rtc_peers import RtcClient, send_to
from tests.turn.coturn import Coturn, free_port
from tests.turn.netns import KioskHost

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
SECONDS = 2.0


@pytest.fixture
def kiosk_host() -> Iterator[KioskHost]:
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("nft") is None:
        pytest.fail("this test needs root, iproute2 and nftables (make install-test)")
    host = KioskHost()
    try:
        host.up()
        yield host
    finally:
        host.down()


@pytest.fixture
def turn_on_host(kiosk_host: KioskHost, tmp_path: Path) -> Iterator[Coturn]:
    server = Coturn(tmp_path, host=kiosk_host.server_ip, recorder_hosts=[kiosk_host.server_ip])
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def served(turn_on_host: Coturn, kiosk_host: KioskHost,
                 tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Recorders]]:
    settings = turn_on_host.settings(urls=[turn_on_host.url("tcp")])
    settings.recording.enabled, settings.recording.local_recorder = True, False
    settings.recording.dir = str(tmp_path / "recordings")
    port = free_port(kiosk_host.server_ip)
    client = TestClient(TestServer(create_app(settings), host=kiosk_host.server_ip, port=port))
    await client.start_server()
    recorders = Recorders(client.server.app, str(client.make_url("/ws")),
                          tmp_path / "recordings")
    try:
        yield client, recorders
    finally:
        await recorders.close()
        await client.close()


async def test_udp_blocked_kiosk_calls_over_turn_tcp_and_is_recorded(
        served: tuple[TestClient[Any, Any], Recorders], kiosk_host: KioskHost,
        turn_on_host: Coturn) -> None:
    client, recorders = served
    app = client.server.app
    kiosk_host.firewall([int(client.port or 0), turn_on_host.port])
    await recorders.start("rec-a")
    specialist = await RtcClient.open(client, await quick_specialist(app, "li", {"tax": 1}))
    kiosk = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", kiosk_host.netns, sys.executable, "-m", "tests.turn.netns_kiosk",
        str(client.make_url("/ws")), await add_terminal(app, "T1"), str(SECONDS),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    try:
        await specialist.available()
        offered = await specialist.recv("call.offered", timeout=30)
        await specialist.send({"type": "call.accept", "call_id": offered["call_id"]})
        connected = await specialist.recv("call.connected")
        [terminal] = [p["id"] for p in connected["participants"] if p["role"] == "terminal"]
        [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
        await specialist.call(connected["call_id"], terminal)
        await specialist.frames(terminal, video=15, audio=15, timeout=60)
        await send_to([specialist], connected["call_id"], recorder, SECONDS, timeout=60)
        assert kiosk.stdout is not None
        line = await asyncio.wait_for(kiosk.stdout.readline(), 90)
        seen = json.loads(line or b"{}")
        assert seen.get("received", {}).get("video", 0) >= 15, seen
        assert seen["specialist"][0] == "relay" and seen["recorder"][0] == "relay", seen
        assert kiosk_host.udp_dropped() > 0, "the kiosk tried UDP and the firewall dropped it"
        await specialist.send({"type": "call.hangup", "call_id": connected["call_id"]})
        await specialist.recv("call.ended")
        await specialist.hang_up_media()
        assert await asyncio.wait_for(kiosk.wait(), 30) == 0
        rows = await _rows(client, connected["session_id"], {1: "complete"})
        assert {r["participant_id"] for r in rows} == {terminal, specialist.me}
        for row in rows:
            decoded = decode_recording(recorders.directory / row["path"])
            assert decoded.frames["video"] >= SECONDS * 30 * 0.6, (row, decoded.frames)
    finally:
        if kiosk.returncode is None:
            kiosk.kill()
            await kiosk.wait()
        await specialist.close()
