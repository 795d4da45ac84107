"""`rtc.*` relays (sent at once, no outbox) and the TURN refresh (`ice.servers`, a step)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from signaling import messages as m
from signaling import switchboard
from signaling.errors import Refused
from signaling.identity import Identity, Role
from tests.switchboard.conftest import ALICE, BOB, KIOSK, RECORDER, SITE, Desk
from tests.switchboard.test_steps import connected_call

KIOSK2 = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=SITE)
CANDIDATE = m.IceCandidate(candidate="candidate:1 1 udp 2122260223 10.0.0.2 5000 typ host",
                           sdpMid="0", sdpMLineIndex=0)


async def bobs_call(desk: Desk) -> str:
    """Bob (general) connected with the second kiosk: a call beside Alice's."""
    await desk.connect(BOB)
    await desk.board.handle(BOB, m.AgentStatus(status="available"))
    await desk.connect(KIOSK2)
    await desk.board.handle(KIOSK2, m.CallRequest(queue="general"))
    call_id = str(desk.sinks["terminal:T2"].frames[-1]["call_id"])
    await desk.board.handle(BOB, m.CallAccept(call_id=call_id, offer=1))
    return call_id


async def test_a_candidate_reaches_only_its_addressee_with_its_sender(desk: Desk) -> None:
    call_id = await connected_call(desk)
    kiosk, alice = desk.sinks["terminal:T1"], desk.sinks["specialist:alice"]
    heard = len(kiosk.frames), len(alice.frames)
    await desk.board.handle(KIOSK, m.RtcCandidate(call_id=call_id, to="specialist:alice",
                                                  candidate=CANDIDATE))
    assert len(kiosk.frames) == heard[0]  # nothing back to the sender
    assert alice.frames[heard[1]:] == [{
        "type": "rtc.candidate", "call_id": call_id, "to": "specialist:alice",
        "from": "terminal:T1",
        "candidate": {"candidate": CANDIDATE.candidate, "sdpMid": "0", "sdpMLineIndex": 0}}]
    answer = m.SessionDescription(type="answer", sdp="v=0\r\n")
    await desk.board.handle(ALICE, m.RtcDescription(call_id=call_id, to="terminal:T1",
                                                    description=answer))
    assert kiosk.frames[-1] == {"type": "rtc.description", "call_id": call_id,
                                "to": "terminal:T1", "from": "specialist:alice",
                                "description": {"type": "answer", "sdp": "v=0\r\n"}}


async def test_no_relay_outside_the_senders_own_call(desk: Desk) -> None:
    alices = await connected_call(desk)
    bobs = await bobs_call(desk)
    heard = {p: len(sink.frames) for p, sink in desk.sinks.items()}

    async def refused(who: Identity, call_id: str, to: str) -> str:
        with pytest.raises(Refused) as exc:
            await desk.board.handle(who, m.RtcCandidate(call_id=call_id, to=to,
                                                        candidate=CANDIDATE))
        return exc.value.code

    assert await refused(BOB, alices, "terminal:T1") == "not_in_call"  # not his call
    assert await refused(BOB, bobs, "terminal:T1") == "not_in_call"  # not in his call
    assert await refused(KIOSK2, bobs, "terminal:T2") == "not_in_call"  # to oneself
    assert await refused(KIOSK, "no-such-call", "specialist:alice") == "not_in_call"
    assert {p: len(sink.frames) for p, sink in desk.sinks.items()} == heard


async def test_a_member_and_the_calls_recorder_relay_both_ways(recorded_desk: Desk) -> None:
    desk = recorded_desk
    recorder = await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    call_id = await connected_call(desk)
    offer = m.SessionDescription(type="offer", sdp="v=0\r\n")
    await desk.board.handle(RECORDER, m.RtcDescription(call_id=call_id, to="terminal:T1",
                                                       description=offer))
    assert desk.sinks["terminal:T1"].frames[-1]["from"] == "recorder:rec1"
    await desk.board.handle(KIOSK, m.RtcCandidate(call_id=call_id, to="recorder:rec1",
                                                  candidate=None))
    assert recorder.frames[-1] == {"type": "rtc.candidate", "call_id": call_id,
                                   "to": "recorder:rec1", "from": "terminal:T1",
                                   "candidate": None}
    with pytest.raises(Refused):  # the recorder speaks only to the call's members
        await desk.board.handle(RECORDER, m.RtcCandidate(call_id=call_id, to="specialist:bob",
                                                         candidate=None))


async def test_fresh_turn_credentials_go_to_the_connection(desk: Desk) -> None:
    issued: list[str] = []

    def provider(who: Identity) -> list[dict[str, Any]]:
        issued.append(who.principal)
        return [{"urls": ["turn:turn.example:3478"], "username": f"{len(issued)}:x",
                 "credential": "c"}]

    desk.board.services = dataclasses.replace(desk.s, ice_servers=provider)
    kiosk = await desk.connect(KIOSK)
    await desk.board.credentials_expiring(KIOSK)
    assert issued == ["terminal:T1", "terminal:T1"]  # welcome, then the refresh
    assert kiosk.frames[-1] == {"type": "ice.servers", "ice_servers": [
        {"urls": ["turn:turn.example:3478"], "username": "2:x", "credential": "c"}]}


def _failing_relay_calls(desk: Desk, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    """The relay's call look-up fails the next `failures` times, as a restarting Redis's
    stale pooled connections do."""
    link = desk.s.link
    real = link.relay_call
    left = [failures]

    async def relay_call(call_id: str) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise ConnectionError("Connection closed by server.")
        return await real(call_id)

    monkeypatch.setattr(link, "relay_call", relay_call)


async def test_a_relay_that_meets_a_failing_backend_is_sent_once_it_answers(
        desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(switchboard, "REPORT_RETRY_S", (0.01, 0.01, 0.01))
    call_id = await connected_call(desk)
    alice = desk.sinks["specialist:alice"]
    heard = len(alice.frames)
    _failing_relay_calls(desk, monkeypatch, failures=2)
    with caplog.at_level(logging.WARNING, logger="signaling.retry"):
        await desk.board.handle(KIOSK, m.RtcCandidate(call_id=call_id, to="specialist:alice",
                                                      candidate=CANDIDATE))
    assert [f["type"] for f in alice.frames[heard:]] == ["rtc.candidate"]  # once
    assert caplog.text.count("relaying rtc.candidate from terminal:T1 failed") == 2


async def test_a_relay_whose_backend_keeps_failing_fails_after_the_last_wait(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switchboard, "REPORT_RETRY_S", (0.01, 0.01))
    call_id = await connected_call(desk)
    alice = desk.sinks["specialist:alice"]
    heard = len(alice.frames)
    _failing_relay_calls(desk, monkeypatch, failures=3)  # the first attempt and two more
    with pytest.raises(ConnectionError):
        await desk.board.handle(KIOSK, m.RtcCandidate(call_id=call_id, to="specialist:alice",
                                                      candidate=CANDIDATE))
    assert alice.frames[heard:] == []
    await desk.board.handle(KIOSK, m.RtcCandidate(call_id=call_id, to="specialist:alice",
                                                  candidate=CANDIDATE))
    assert [f["type"] for f in alice.frames[heard:]] == ["rtc.candidate"]
