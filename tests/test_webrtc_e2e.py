"""End to end with real WebRTC: two aiortc peers meet through the real server.

The terminal and the specialist pair through `/ws`, trickle SDP and ICE via
`rtc.*`, see and hear each other (decoded frames counted on both sides), hang
up, and the session shows up in `/api/sessions` with its whole timeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.helpers import add_manager, add_specialist, add_terminal
from tests.rtc_peers import RtcClient, use_loopback_when_alone

VIDEO_FRAMES = 15  # half a second of 30 fps: decoding really works, not just one keyframe
AUDIO_FRAMES = 25  # half a second of 20 ms Opus frames

pytestmark = pytest.mark.slow


@pytest.fixture
async def clients() -> AsyncIterator[list[RtcClient]]:
    """Every RtcClient a test opens, closed afterwards even when the test fails."""
    use_loopback_when_alone()
    opened: list[RtcClient] = []
    yield opened
    for client in opened:
        await client.close()


async def test_terminal_and_specialist_see_and_hear_each_other(
        app_client: Any, clients: list[RtcClient]) -> None:
    app = app_client.server.app
    specialist = await RtcClient.open(app_client, await add_specialist(app, "li", {"tax": 1}))
    clients.append(specialist)
    await specialist.available()
    terminal = await RtcClient.open(app_client, await add_terminal(app, "T1"))
    clients.append(terminal)

    await terminal.send({"type": "call.request", "queue": "tax",
                         "enterprise": {"name": "Jiading Bakery"}})
    queued = await terminal.recv("call.queued")
    offered = await specialist.recv("call.offered", call_id=queued["call_id"])
    await specialist.send({"type": "call.accept", "call_id": offered["call_id"]})
    on_terminal = await terminal.recv("call.connected")
    on_specialist = await specialist.recv("call.connected")
    call_id = on_specialist["call_id"]
    assert on_terminal["you"] == terminal.me and on_specialist["you"] == specialist.me

    await specialist.call(call_id, terminal.me)  # the later joiner offers
    for me, other in ((specialist, terminal), (terminal, specialist)):
        link = await me.connected(other.me)
        assert link.pc.connectionState == "connected"
    for me, other in ((specialist, terminal), (terminal, specialist)):
        link = await me.frames(other.me, video=VIDEO_FRAMES, audio=AUDIO_FRAMES)
        assert link.received["video"] >= VIDEO_FRAMES and link.received["audio"] >= AUDIO_FRAMES

    await terminal.send({"type": "call.hangup", "call_id": call_id})
    ended = [await c.recv("call.ended", call_id=call_id) for c in (terminal, specialist)]
    assert {e["reason"] for e in ended} == {"hangup"} and ended[1]["by"] == terminal.me
    for client in (terminal, specialist):
        await client.hang_up_media()

    auth = {"Authorization": f"Bearer {await add_manager(app)}"}
    listed = await (await app_client.get("/api/sessions", headers=auth)).json()
    assert [s["id"] for s in listed["sessions"]] == [on_terminal["session_id"]]
    detail = await (await app_client.get(f"/api/sessions/{on_terminal['session_id']}",
                                         headers=auth)).json()
    timeline = [e["type"] for e in detail["events"]]
    assert timeline == ["queued", "offered", "answered", "participant_joined",
                        "participant_joined", "ended", "participant_left", "participant_left"]
    joined = {e["data"]["participant_id"] for e in detail["events"]
              if e["type"] == "participant_joined"}
    assert joined == {terminal.me, specialist.me}
    session = detail["session"]
    assert session["specialist_id"] == "li" and session["terminal_id"] == "T1"
    assert session["end_reason"] == "hangup"
