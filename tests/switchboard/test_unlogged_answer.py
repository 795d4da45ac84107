"""A call the router connected whose `answered` never reached the log: the answering node was
killed between its accept transaction and its append (issue 16's goal-size day: two kiosk
cancels logged `ended`). The kiosk never heard it connected; its cancel waits for the
answer's append (the survivor's: tests/cluster/test_dead_answer.py), and when none comes
leaves the log and the kiosk agreeing: abandoned, unanswered."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest

from signaling import messages as m
from signaling import parties
from signaling.model import AgentState
from signaling.timers import Timer
from tests.switchboard.conftest import ALICE, KIOSK, Desk
from tests.switchboard.test_steps import offered_call


async def test_a_cancel_of_a_call_whose_answer_was_never_logged_abandons_it(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parties, "ANSWER_WAIT_S", (0.0, 0.01))  # nobody will log it
    call_id = await offered_call(desk)
    call = await desk.s.router.get_call(call_id)
    assert call is not None
    await desk.s.router.accept(call_id, ALICE.id, desk.clock(), 1)  # then its node died
    kiosk, alice = desk.sinks[KIOSK.principal], desk.sinks[ALICE.principal]
    kiosk.frames.clear()
    alice.frames.clear()
    await desk.drive(KIOSK, m.CallCancel(call_id=call_id))
    assert [(f["type"], f["reason"]) for f in kiosk.frames if f["type"].startswith("call.")] == [
        ("call.ended", "cancelled")]
    assert ("call.ended", "cancelled") in [(f["type"], f.get("reason")) for f in alice.frames]
    session = await desk.db.get_session(call.session_id)
    assert session is not None
    assert (session.state, session.answered_at) == ("abandoned", None)
    agent = await desk.s.router.get_agent(ALICE.id)
    assert agent is not None and agent.state == AgentState.WRAP_UP and agent.call_id is None
    assert await desk.s.router.calls_of_terminal(KIOSK.id) == []


async def test_a_cancel_crossing_a_logged_answer_ends_the_call(desk: Desk) -> None:
    """The answer logged (the kiosk hears `call.connected` before this `call.ended`): the
    call was answered, and the cancel hangs it up."""
    call_id = await offered_call(desk)
    call = await desk.s.router.get_call(call_id)
    assert call is not None
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    await desk.drive(KIOSK, m.CallCancel(call_id=call_id))
    session = await desk.db.get_session(call.session_id)
    assert session is not None and session.state == "ended" and session.answered_at is not None


async def test_a_cancel_overtaking_the_relayed_answer_is_told_the_answer_first(desk: Desk
                                                                             ) -> None:
    """The short CI day's mismatch (`c_2137908e1295064d`): the answer's `call.connected`
    was still on its way from the answering node when the kiosk's node ended the call on
    its cancel, and the kiosk heard only `call.ended`: cancelled, said the kiosk; answered,
    said the log. The cancel tells the caller the answer itself, then the end."""
    call_id = await offered_call(desk)
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    kiosk = desk.sinks[KIOSK.principal]
    kiosk.frames.clear()  # the answer's own frame: not there yet (relayed from its node)
    await desk.drive(KIOSK, m.CallCancel(call_id=call_id))
    told = [f for f in kiosk.frames if f["type"].startswith("call.")]
    assert [(f["type"], f.get("resumed"), f.get("reason")) for f in told] == [
        ("call.connected", True, None), ("call.ended", None, "hangup")]
    assert told[0]["you"] == KIOSK.principal
    assert {p["role"] for p in told[0]["participants"]} >= {"terminal", "specialist"}


async def test_a_hang_up_whose_timer_fails_once_is_still_logged(desk: Desk) -> None:
    """The CI-size day's lost call: Redis restarting as a kiosk hung up. The router ended the
    call, then setting the wrap-up timer (before the log: it outlives a crash) failed, so
    `ended` was never logged and the kiosk's second press found no call: `connected` in the
    log for ever. The timer is tried again; the hang-up is logged."""
    call_id = await offered_call(desk)
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    call = await desk.s.router.get_call(call_id)
    assert call is not None
    scheduler = desk.s.scheduler
    failed: list[str] = []

    class Restarting:  # the real scheduler, whose first call fails as Redis restarts
        def __getattr__(self, name: str) -> Any:
            return getattr(scheduler, name)

        async def change(self, cancel: Sequence[str], schedule: Sequence[Timer]) -> None:
            if not failed:
                failed.extend(timer.key for timer in schedule)
                raise ConnectionError("Connection reset by peer")
            await scheduler.change(cancel, schedule)

    restarting = desk.board_of(dataclasses.replace(desk.s, scheduler=Restarting()))  # type: ignore[arg-type]
    await restarting.drive(KIOSK, m.CallHangup(call_id=call_id))
    assert failed == [f"wrapup:{ALICE.id}"]
    session = await desk.db.get_session(call.session_id)
    assert session is not None and session.state == "ended"
