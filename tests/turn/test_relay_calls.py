"""Calls through a real coturn: both aiortc parties relay-only (`iceTransportPolicy =
relay`), the terminal over TURN/UDP and the specialist over TURN/TCP, see and hear each
other, and the recorder (a real `vwin recorder` process) records both of them through
the relay; with expired credentials a relay-only party gathers nothing and the call
cannot connect. (aiortc uses only the first TURN URL it is given, so each party is
handed the one URL it is to use.)"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from server.turn import rest_credentials
from tests.helpers import add_terminal, quick_specialist
from tests.recording.analysis import decode_recording
from tests.recording.test_recording_e2e import Recorders, _rows
from tests.rtc_peers import VIDEO_FPS, RtcClient, send_to, use_loopback_when_alone
from tests.turn.coturn import SECRET, Coturn
from tests.turn.relay import local_types, relay_only, selected_pair

pytestmark = pytest.mark.slow
SECONDS = 2.0  # of media recorded per party
FRAMES = 15


@pytest.fixture
async def parties() -> AsyncIterator[list[RtcClient]]:
    use_loopback_when_alone()
    opened: list[RtcClient] = []
    yield opened
    for party in opened:
        await party.close()


def _only(url: str, client: RtcClient) -> list[dict[str, Any]]:
    """The client's own TURN credentials, for the one URL `url`."""
    *static, turn = client.welcome["ice_servers"]
    return [*static, {**turn, "urls": [url]}]


async def _connected_call(client: Any, parties: list[RtcClient], specialist_url: str,
                          terminal_url: str,
                          turn: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    app = client.server.app
    specialist = await RtcClient.open(client, await quick_specialist(app, "li", {"tax": 1}))
    relay_only(specialist, turn or _only(specialist_url, specialist))
    parties.append(specialist)
    await specialist.available()
    terminal = await RtcClient.open(client, await add_terminal(app, "T1"))
    relay_only(terminal, turn or _only(terminal_url, terminal))
    parties.append(terminal)
    await terminal.send({"type": "call.request", "queue": "tax"})
    queued = await terminal.recv("call.queued")
    await specialist.send({"type": "call.accept", "call_id": queued["call_id"]})
    await specialist.recv("call.connected")
    return await terminal.recv("call.connected")


async def test_relay_only_call_is_seen_heard_and_recorded(
        aiohttp_client: Any, coturn: Coturn, parties: list[RtcClient], tmp_path: Path) -> None:
    directory = tmp_path / "recordings"
    settings = coturn.settings()  # both URLs: the recorder uses the first, UDP
    settings.recording.enabled, settings.recording.local_recorder = True, False
    settings.recording.dir = str(directory)
    client = await aiohttp_client(create_app(settings))
    recorders = Recorders(client.server.app, str(client.make_url("/ws")), directory)
    try:
        await recorders.start("rec-a")
        connected = await _connected_call(client, parties, coturn.url("tcp"),
                                          coturn.url("udp"))
        specialist, terminal = parties
        await specialist.call(connected["call_id"], terminal.me)
        for me, other in ((specialist, terminal), (terminal, specialist)):
            link = await me.frames(other.me, video=FRAMES, audio=FRAMES)
            assert local_types(link) == {"relay"}
            assert selected_pair(link) == ("relay", "relay")
        [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
        await send_to(parties, connected["call_id"], recorder, SECONDS)
        for party in parties:
            assert selected_pair(party.links[recorder])[0] == "relay"
        await terminal.send({"type": "call.hangup", "call_id": connected["call_id"]})
        for party in parties:
            await party.recv("call.ended")
            await party.hang_up_media()
        rows = await _rows(client, connected["session_id"], {1: "complete"})
        assert {r["participant_id"] for r in rows} == {p.me for p in parties}
        for row in rows:
            decoded = decode_recording(directory / row["path"])
            assert decoded.codecs == {"video": "vp8", "audio": "opus"}
            assert decoded.frames["video"] >= SECONDS * VIDEO_FPS * 0.7
    finally:
        await recorders.close()


async def test_expired_credentials_cannot_relay(aiohttp_client: Any, coturn: Coturn,
                                                parties: list[RtcClient]) -> None:
    client = await aiohttp_client(create_app(coturn.settings(urls=[coturn.url("udp")])))
    username, credential, _ = rest_credentials(SECRET, "terminal:T1", -10, time.time())
    expired = [{"urls": [coturn.url("udp")], "username": username, "credential": credential}]
    connected = await _connected_call(client, parties, coturn.url("udp"), coturn.url("udp"),
                                      expired)
    specialist, terminal = parties
    await specialist.call(connected["call_id"], terminal.me)
    link = specialist.links[terminal.me]
    assert local_types(link) == set(), "no relay allocated with expired credentials"
    with pytest.raises((ConnectionError, TimeoutError)):
        await specialist.connected(terminal.me, timeout=5)
    assert link.pc.connectionState != "connected"
