"""Protocol v1 in a call: WebRTC signalling relay, chat, rating and wrap-up notes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tests.helpers import InCall, Peer, bearer, connected_call, log_size, quick_manager

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
             "sdpMid": "0", "sdpMLineIndex": 0}


async def settled(peer: Peer) -> None:
    """Everything this peer sent before has been handled (frames are handled in order)."""
    await peer.send({"type": "ping"})
    await peer.recv("pong")


def relayed(peer: Peer) -> list[dict[str, Any]]:
    return [m for m in peer.inbox if m["type"].startswith("rtc.")]


async def two_calls(client: Any) -> tuple[InCall, InCall]:
    return await connected_call(client, "T1", "alice"), await connected_call(client, "T2", "bob")


async def test_rtc_messages_reach_only_their_addressee(app_client: Any) -> None:
    one, two = await two_calls(app_client)
    await one.agent.send({"type": "rtc.description", "call_id": one.call_id,
                          "to": one.kiosk_id, "description": OFFER})
    got = await one.kiosk.recv("rtc.description")
    assert got == {"type": "rtc.description", "call_id": one.call_id, "to": one.kiosk_id,
                   "from": one.agent_id, "description": OFFER}
    await one.kiosk.send({"type": "rtc.candidate", "call_id": one.call_id,
                          "to": one.agent_id, "candidate": CANDIDATE})
    got = await one.agent.recv("rtc.candidate")
    assert (got["from"], got["to"]) == (one.kiosk_id, one.agent_id)
    assert {k: got["candidate"][k] for k in CANDIDATE} == CANDIDATE
    await one.kiosk.send({"type": "rtc.candidate", "call_id": one.call_id,
                          "to": one.agent_id, "candidate": None})
    end = await one.agent.recv("rtc.candidate")
    assert end["candidate"] is None and end["from"] == one.kiosk_id
    for peer in (one.kiosk, one.agent, two.kiosk, two.agent):
        await settled(peer)
    assert relayed(one.kiosk) == relayed(one.agent) == []
    assert relayed(two.kiosk) == relayed(two.agent) == []


async def test_rtc_outside_your_call_is_refused(app_client: Any) -> None:
    one, two = await two_calls(app_client)
    events = await log_size(app_client.server.app)
    wrong = [
        (one.call_id, two.kiosk_id),  # a participant of another call
        (two.call_id, two.kiosk_id),  # another call altogether
        (two.call_id, one.kiosk_id),  # own partner, under another call's id
        (one.call_id, one.agent_id),  # oneself
        (one.call_id, "terminal:nobody"),
        ("c_does_not_exist", one.kiosk_id),
    ]
    for call_id, to in wrong:
        await one.agent.send({"type": "rtc.description", "call_id": call_id, "to": to,
                              "description": OFFER})
        await one.agent.error("not_in_call")
        await one.agent.send({"type": "rtc.candidate", "call_id": call_id, "to": to,
                              "candidate": None})
        await one.agent.error("not_in_call")
    for peer in (one.kiosk, two.kiosk, two.agent):
        await settled(peer)
        assert relayed(peer) == []
    assert await log_size(app_client.server.app) == events


async def test_chat_reaches_both(app_client: Any) -> None:
    call = await connected_call(app_client)
    await call.agent.send({"type": "chat.send", "call_id": call.call_id,
                           "text": "请出示营业执照"})
    for peer in (call.kiosk, call.agent):
        msg = await peer.recv("chat.message")
        assert (msg["call_id"], msg["from"], msg["name"], msg["text"]) == (
            call.call_id, call.agent_id, "Alice", "请出示营业执照")
        assert dt.datetime.fromisoformat(msg["ts"]).tzinfo is not None


async def test_rating_and_wrapup_are_saved(app_client: Any) -> None:
    app = app_client.server.app
    call = await connected_call(app_client)
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("call.ended")
    await call.kiosk.send({"type": "session.rate", "session_id": call.session_id, "score": 4,
                           "comment": "快"})
    saved = await call.kiosk.recv("saved")
    assert (saved["what"], saved["session_id"]) == ("rating", call.session_id)
    await call.agent.send({"type": "session.wrapup", "session_id": call.session_id,
                           "outcome": "follow_up", "notes": "needs tax clearance"})
    assert (await call.agent.recv("saved"))["what"] == "wrapup"
    manager = await quick_manager(app)
    resp = await app_client.get(f"/api/sessions/{call.session_id}", headers=bearer(manager))
    session = (await resp.json())["session"]
    assert (session["rating"], session["rating_comment"]) == (4, "快")
    assert (session["outcome"], session["notes"]) == ("follow_up", "needs tax clearance")


async def test_notes_on_someone_elses_session_are_refused(app_client: Any) -> None:
    app = app_client.server.app
    one, two = await two_calls(app_client)
    events = await log_size(app)
    await one.kiosk.send({"type": "session.rate", "session_id": two.session_id, "score": 1})
    await one.kiosk.error("not_in_session")
    await one.agent.send({"type": "session.wrapup", "session_id": two.session_id,
                          "outcome": "resolved"})
    await one.agent.error("not_in_session")
    await one.kiosk.send({"type": "session.rate", "session_id": "no-such-session", "score": 5})
    await one.kiosk.error("not_in_session")
    assert await log_size(app) == events
