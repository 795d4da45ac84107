"""Each step's outbox: the log events, messages and timers one protocol message causes."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from signaling import messages as m
from signaling import offers
from signaling.errors import Refused
from signaling.events import LogEvent
from signaling.model import AgentState
from signaling.outbox import Outbox
from tests.switchboard.conftest import ALICE, BOB, KIOSK, RECORDER, Desk


def events(out: Outbox) -> list[tuple[str, dict[str, Any]]]:
    return [(e.type, e.data) for e in out.events]


def sent(out: Outbox) -> list[tuple[str, str]]:
    return [(principal, m.tag_of(message)) for principal, message in out.sends]


def timers(out: Outbox) -> list[tuple[str, str, float]]:
    return [(t.key, t.kind, t.delay_s) for t in out.timers]


async def queued_call(desk: Desk) -> str:
    await desk.connect(KIOSK)
    out = await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    return str(out.sends[0][1].call_id)  # type: ignore[attr-defined]


async def offered_call(desk: Desk) -> str:
    """Alice is available and the kiosk's call rings her (offer 1)."""
    await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    return await queued_call(desk)


async def connected_call(desk: Desk) -> str:
    call_id = await offered_call(desk)
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    return call_id


async def test_request_is_logged_then_queued_and_dispatched(desk: Desk) -> None:
    await desk.connect(ALICE)  # logged in (away): the queue is staffed
    await desk.connect(KIOSK)
    desk.clock.now += 5
    out = await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    queued = out.sends[0][1]
    assert isinstance(queued, m.CallQueued) and queued.position == 1
    assert sent(out) == [("terminal:T1", "call.queued")]
    # one node: dispatched in the step, `queued` logged in the same append as any offer
    assert [t for t, _ in events(out)] == ["queued"]
    assert not out.dispatch and out.queues == {"tax"}
    call = await desk.s.router.get_call(queued.call_id)
    assert call is not None
    assert await desk.db.session_members(call.session_id) is not None


async def test_request_and_its_first_offer_are_one_append(desk: Desk) -> None:
    await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    await desk.connect(KIOSK)
    appends: list[list[str]] = []
    log = desk.s.session_log

    class Counted:
        async def append(self, batch: Sequence[LogEvent]) -> None:
            appends.append([e.type for e in batch])
            await log.append(batch)

    counted = dataclasses.replace(desk.s, session_log=Counted())  # type: ignore[arg-type]
    out = await desk.board_of(counted).drive(KIOSK, m.CallRequest(queue="tax"))
    assert appends == [["queued", "offered", "agent_status"]]
    assert sent(out) == [("terminal:T1", "call.queued"), ("specialist:alice", "agent.status"),
                         ("specialist:alice", "call.offered")]
    assert desk.sinks["terminal:T1"].types()[-1] == "call.queued"
    assert desk.sinks["specialist:alice"].types()[-1] == "call.offered"


async def test_a_request_whose_log_fails_is_taken_back(desk: Desk) -> None:
    await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    await desk.connect(KIOSK)

    class Down:
        async def append(self, batch: Sequence[LogEvent]) -> None:
            raise ConnectionError("database down")

    down = dataclasses.replace(desk.s, session_log=Down())  # type: ignore[arg-type]
    with pytest.raises(ConnectionError):
        await desk.board_of(down).drive(KIOSK, m.CallRequest(queue="tax"))
    assert await desk.s.router.calls_of_terminal("T1") == []  # the kiosk may ask again
    alice = await desk.s.router.get_agent("alice")
    assert alice is not None and alice.state == AgentState.AVAILABLE and alice.call_id is None
    assert desk.sinks["specialist:alice"].types()[-1] != "call.offered"
    assert desk.sinks["terminal:T1"].types()[-1] != "call.queued"
    out = await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    assert [t for t, _ in events(out)] == ["queued", "offered", "agent_status"]


async def test_request_to_an_unstaffed_queue_is_rejected_and_logged(desk: Desk) -> None:
    await desk.connect(KIOSK)
    out = await desk.drive(KIOSK, m.CallRequest(queue="general"))
    assert [t for t, _ in events(out)] == ["queued", "rejected"]
    assert events(out)[1][1] == {"reason": "no_specialist"}
    assert events(out)[0][1] == {"queue": "general", "terminal_id": "T1",
                                 "terminal_name": "一号机", "site_id": "park1",
                                 "site_name": "高新园区", "enterprise": None, "node_id": "local"}
    assert sent(out) == [("terminal:T1", "call.rejected")]
    assert not out.dispatch


async def test_offer_logs_rings_and_sets_the_ring_timer_twice(desk: Desk) -> None:
    await desk.connect(ALICE)
    call_id = await queued_call(desk)
    assert await desk.s.router.set_status("alice", AgentState.AVAILABLE, desk.clock())
    out = await offers.dispatch(desk.s)
    assert events(out) == [
        ("offered", {"agent_id": "alice", "offer": 1, "queue": "tax", "via_overflow": False}),
        ("agent_status", {"agent_id": "alice", "new": "ringing", "reason": "offered"}),
    ]
    assert sent(out) == [("specialist:alice", "agent.status"),
                         ("specialist:alice", "call.offered")]
    ring = (f"ring:{call_id}:1", "ring", 20.0)
    assert [(t.key, t.kind, t.delay_s) for t in out.durable_timers] == [ring]
    assert timers(out) == [ring]


async def test_ring_timeout_withdraws_the_offer(desk: Desk) -> None:
    call_id = await offered_call(desk)
    out = await desk.fire("ring", {"call_id": call_id, "agent_id": "alice", "offer": 1})
    assert [t for t, _ in events(out)] == ["missed", "withdrawn", "agent_status"]
    assert events(out)[1][1] == {"agent_id": "alice", "offer": 1, "reason": "timeout"}
    assert events(out)[2][1]["new"] == "available"
    assert sent(out) == [("specialist:alice", "call.withdrawn"),
                         ("specialist:alice", "agent.status")]
    assert out.dispatch
    late = await desk.fire("ring", {"call_id": call_id, "agent_id": "alice", "offer": 1})
    assert late.events == [] and late.dispatch  # a second run changes nothing


async def test_decline_frees_the_specialist_and_dispatches_again(desk: Desk) -> None:
    call_id = await offered_call(desk)
    out = await desk.drive(ALICE, m.CallDecline(call_id=call_id, offer=1))
    assert events(out) == [
        ("declined", {"agent_id": "alice", "offer": 1}),
        ("agent_status", {"agent_id": "alice", "new": "available", "reason": "declined"}),
    ]
    assert sent(out) == [("specialist:alice", "call.withdrawn"),
                         ("specialist:alice", "agent.status")]
    assert out.cancels == [f"ring:{call_id}:1"]
    block = desk.s.queues["tax"].decline_block_s
    assert timers(out) == [(f"unblock:{call_id}:alice", "unblock", block)]
    assert out.dispatch


async def test_accept_connects_both_and_cancels_its_timers(desk: Desk) -> None:
    call_id = await offered_call(desk)
    desk.clock.now += 7.25
    out = await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    assert events(out) == [
        ("answered", {"agent_id": "alice", "agent_name": "李丽", "offer": 1, "wait_s": 7.25}),
        ("participant_joined", {"participant_id": "terminal:T1", "role": "terminal",
                                "principal_id": "T1", "name": "一号机"}),
        ("participant_joined", {"participant_id": "specialist:alice", "role": "specialist",
                                "principal_id": "alice", "name": "李丽"}),
        ("agent_status", {"agent_id": "alice", "new": "in_call", "reason": "answered"}),
    ]
    assert sorted(sent(out)) == [("specialist:alice", "agent.status"),
                                 ("specialist:alice", "call.connected"),
                                 ("terminal:T1", "call.connected")]
    assert out.cancels == [f"ring:{call_id}:1", f"overflow:{call_id}"]
    kiosk = desk.sinks["terminal:T1"]
    assert kiosk.frames[-1]["type"] == "call.connected"
    assert kiosk.frames[-1]["recording"] is False


async def test_an_answer_to_a_stale_offer_is_refused(desk: Desk) -> None:
    call_id = await offered_call(desk)
    with pytest.raises(Refused) as refused:
        await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=2))
    assert refused.value.code == "offer_gone"
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.ringing_agent == "alice"


async def test_hangup_ends_for_everyone_and_starts_wrapup(desk: Desk) -> None:
    call_id = await connected_call(desk)
    out = await desk.drive(KIOSK, m.CallHangup(call_id=call_id))
    assert [t for t, _ in events(out)] == ["ended", "participant_left", "participant_left",
                                           "agent_status"]
    assert events(out)[0][1] == {"reason": "hangup", "by": "terminal:T1"}
    assert sorted(sent(out)) == [("specialist:alice", "agent.status"),
                                 ("specialist:alice", "call.ended"),
                                 ("terminal:T1", "call.ended")]
    assert [(t.key, t.kind, t.delay_s) for t in out.durable_timers] == [
        ("wrapup:alice", "wrapup", 30.0)]
    done = await desk.fire("wrapup", {"agent_id": "alice"})
    assert events(done) == [("agent_status", {"agent_id": "alice", "new": "available",
                                              "reason": "wrapup_timeout"})]


async def test_a_lost_specialist_requeues_the_caller_after_the_grace(desk: Desk) -> None:
    call_id = await connected_call(desk)
    sink = desk.sinks["specialist:alice"]
    await desk.board.disconnect(ALICE, desk.epochs["specialist:alice"], sink)
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == "connected"  # the grace keeps the call
    out = await desk.fire("grace", {"identity": {"role": "specialist", "id": "alice",
                                                 "name": "李丽", "skills": {"tax": 1}},
                                    "epoch": desk.epochs["specialist:alice"]})
    assert [t for t, _ in events(out)] == ["participant_left", "requeued", "agent_status"]
    assert events(out)[1][1] == {"agent_id": "alice", "reason": "agent_lost"}
    assert events(out)[2][1] == {"agent_id": "alice", "old": "in_call", "new": "offline",
                                 "reason": "lost"}
    assert sent(out) == [("terminal:T1", "call.requeued")]
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == "queued"


async def test_a_resumed_terminal_is_told_its_place(desk: Desk) -> None:
    await desk.connect(ALICE)
    call_id = await queued_call(desk)
    old = desk.sinks["terminal:T1"]
    await desk.board.disconnect(KIOSK, desk.epochs["terminal:T1"], old)
    sink = await desk.connect(KIOSK, resume=desk.resumes["terminal:T1"])
    assert sink.types() == ["welcome", "call.queued", "queue.status"]
    assert sink.frames[0]["resumed"] is True
    assert sink.frames[1] == {"type": "call.queued", "call_id": call_id, "queue": "tax",
                              "position": 1, "estimated_wait_s": sink.frames[1][
                                  "estimated_wait_s"], "resumed": True}


async def test_invite_rings_the_other_department_and_transfer_hands_over(desk: Desk) -> None:
    call_id = await connected_call(desk)
    await desk.connect(BOB)
    await desk.drive(BOB, m.AgentStatus(status="available"))
    out = await desk.drive(ALICE, m.CallTransfer(call_id=call_id, queue="general"))
    invited = events(out)[0]
    assert invited[0] == "invited" and invited[1]["queue"] == "general"
    assert invited[1]["transfer"] is True
    assert sorted(sent(out)) == [("specialist:alice", "invitation"),
                                 ("terminal:T1", "invitation")]
    assert out.dispatch
    offer = desk.sinks["specialist:bob"].frames[-1]
    assert offer["type"] == "call.offered" and offer["joins"] == call_id and offer["transfer"]
    joined = await desk.drive(BOB, m.CallAccept(call_id=offer["call_id"], offer=offer["offer"]))
    assert [t for t, _ in events(joined)] == ["participant_joined", "agent_status",
                                              "participant_left", "agent_status"]
    assert events(joined)[0][1]["invitation_id"] == offer["call_id"]
    assert events(joined)[2][1] == {"participant_id": "specialist:alice",
                                    "reason": "transferred"}
    assert ("specialist:bob", "call.connected") in sent(joined)
    assert ("specialist:alice", "call.ended") in sent(joined)
    assert timers(joined) == [("wrapup:alice", "wrapup", 30.0)]
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.agents == ["bob"]


async def test_a_connected_call_gets_a_recorder(recorded_desk: Desk) -> None:
    desk = recorded_desk
    recorder = await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    call_id = await offered_call(desk)
    out = await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    assert ("recording_started", {"recorder": "recorder:rec1", "segment": 1}) in events(out)
    assert ("recorder:rec1", "record.start") in sent(out)
    start = recorder.frames[-1]
    assert start["type"] == "record.start"
    assert [p["id"] for p in start["participants"]] == ["terminal:T1", "specialist:alice"]
    connected = desk.sinks["terminal:T1"].frames[-1]
    assert connected["recording"] is True
    assert connected["participants"][-1]["id"] == "recorder:rec1"
    ended = await desk.drive(ALICE, m.CallHangup(call_id=call_id))
    assert ("recording_stopped", {"recorder": "recorder:rec1", "reason": "hangup"}) in events(
        ended)
    assert ("recorder:rec1", "record.stop") in sent(ended)
