"""A call that ended while the kiosk's socket was away: its `call.ended` went to no socket,
and the resume found no call to tell of, so the kiosk showed its call screen for ever. Now
the kiosk names the call it was in (`hello.call_id`) and the resume tells its end, with
the reason the log has; a call the kiosk was not in is not told."""

from __future__ import annotations

from signaling import messages as m
from signaling import timers
from signaling.identity import Identity, Role
from signaling.switchboard import ANY, STEPS
from tests.switchboard.conftest import ALICE, KIOSK, Desk, Sink
from tests.switchboard.test_resume_crossing import connected_call

OTHER_KIOSK = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=KIOSK.site)


async def _back(desk: Desk, who: Identity, missed: str | None) -> Sink:
    """`who`'s socket lost, then back with its resume token, naming `missed`."""
    resume = desk.resumes.get(who.principal)
    sink = Sink()
    desk.sinks[who.principal] = sink
    desk.epochs[who.principal] = await desk.board.connect(who, sink, resume, missed)
    return sink


async def _lost(desk: Desk, who: Identity) -> None:
    await desk.board.disconnect(who, desk.epochs[who.principal], desk.sinks[who.principal])


async def test_a_call_ended_while_the_kiosk_was_away_is_told_on_resume(desk: Desk) -> None:
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    await desk.drive(ALICE, m.CallHangup(call_id=call_id))  # heard by no socket
    sink = await _back(desk, KIOSK, call_id)
    assert sink.frames[0]["type"] == "welcome" and sink.frames[0]["resumed"]
    ended = [f for f in sink.frames if f["type"] == "call.ended"]
    assert [(f["call_id"], f["reason"]) for f in ended] == [(call_id, "hangup")]
    detail = await desk.db.get_session(ended[0]["session_id"])
    assert detail is not None and detail.call_id == call_id


async def test_without_naming_its_call_the_kiosk_hears_nothing_of_it(desk: Desk) -> None:
    """What every kiosk heard before (and a client of an older page still hears)."""
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    await desk.drive(ALICE, m.CallHangup(call_id=call_id))
    sink = await _back(desk, KIOSK, None)
    assert "call.ended" not in sink.types()


async def test_a_live_call_named_is_resumed_not_ended(desk: Desk) -> None:
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    sink = await _back(desk, KIOSK, call_id)
    assert "call.ended" not in sink.types()
    assert [f["call_id"] for f in sink.frames if f["type"] == "call.connected"] == [call_id]


async def test_another_kiosks_call_is_not_told(desk: Desk) -> None:
    call_id = await connected_call(desk)
    await desk.drive(ALICE, m.CallHangup(call_id=call_id))
    await desk.connect(OTHER_KIOSK)
    await _lost(desk, OTHER_KIOSK)
    sink = await _back(desk, OTHER_KIOSK, call_id)
    assert sink.frames[0]["resumed"] and "call.ended" not in sink.types()
    fresh = await _back(desk, KIOSK, "c_unknown")  # a call the log never had: nothing
    assert "call.ended" not in fresh.types()


async def test_an_end_lost_with_its_node_closes_the_session_interrupted(desk: Desk) -> None:
    """The short bench day's hand-off call: the step that ended it changed routing and died
    with its node before the log had it (connected in the log for ever). The party that
    comes back naming it hears it ended; `LOST_END_S` later, still gone from routing and
    still open in the log, its session is closed `interrupted`."""
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    await desk.s.router.hangup(call_id, desk.clock())  # routing only: the log never hears
    sink = await _back(desk, KIOSK, call_id)
    ended = [f for f in sink.frames if f["type"] == "call.ended"]
    assert [(f["call_id"], f["reason"]) for f in ended] == [(call_id, "ended")]
    session_id = ended[0]["session_id"]
    before = await desk.db.get_session(session_id)
    assert before is not None and before.state == "connected"
    await desk.fire(timers.LOST_END, {"call_id": call_id})
    after = await desk.db.get_session(session_id)
    assert after is not None and after.state == "interrupted"


async def test_an_end_on_its_way_to_the_log_is_not_closed_twice(desk: Desk) -> None:
    """Told `ended` while the ending step's append was still on its way: by the timer the
    log has its end, and nothing more is logged."""
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    await desk.drive(ALICE, m.CallHangup(call_id=call_id))
    await desk.fire(timers.LOST_END, {"call_id": call_id})
    rows, _ = await desk.db.list_sessions(terminal=KIOSK.id)
    assert [(r.state, r.end_reason) for r in rows] == [("ended", "hangup")]


async def _died_before_the_log(desk: Desk, who: Identity, msg: m.Inbound) -> None:
    """The step ran (its routing transaction included); its node died before its log
    append and its messages: the outbox is never committed."""
    step = STEPS.get((who.role, type(msg))) or STEPS[(ANY, type(msg))]
    await step(desk.s, who, msg)


async def test_a_hangup_lost_with_its_node_closes_the_session_as_it_ended(desk: Desk
                                                                         ) -> None:
    """Routing kept how the hang-up ended the call: the kiosk back hears `hangup`, not
    `ended`, and the lost end is logged as the hang-up would have, the specialist and the
    kiosk leaving, not `interrupted`."""
    call_id = await connected_call(desk)
    await _lost(desk, KIOSK)
    await _died_before_the_log(desk, ALICE, m.CallHangup(call_id=call_id))
    sink = await _back(desk, KIOSK, call_id)
    ended = [f for f in sink.frames if f["type"] == "call.ended"]
    assert [(f["call_id"], f["reason"]) for f in ended] == [(call_id, "hangup")]
    before = await desk.db.get_session(ended[0]["session_id"])
    assert before is not None and before.state == "connected"
    await desk.fire(timers.LOST_END, {"call_id": call_id})
    after = await desk.db.get_session(ended[0]["session_id"])
    assert after is not None
    assert (after.state, after.end_reason) == ("ended", "hangup")
    assert after.talk_s is not None and after.talk_s >= 0
    assert {(p.participant_id, p.left_reason) for p in after.participants} == {
        (ALICE.principal, "hangup"), (KIOSK.principal, "hangup")}
    assert [e.actor for e in after.events if e.type == "ended"] == [ALICE.principal]


async def test_a_cancel_lost_with_its_node_closes_the_session_abandoned(desk: Desk) -> None:
    """The short bench day's kiosk that cancelled 0.14 s before its node was killed: its
    session is closed `abandoned` (`cancelled`), as the kiosk saw it, not `interrupted`."""
    await desk.connect(ALICE)  # signed in, away: the queue is open, nobody answers
    await desk.connect(KIOSK)
    first = await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    call_id: str = first.sends[0][1].call_id  # type: ignore[attr-defined]
    await _died_before_the_log(desk, KIOSK, m.CallCancel(call_id=call_id))
    await _lost(desk, KIOSK)
    sink = await _back(desk, KIOSK, call_id)
    ended = [f for f in sink.frames if f["type"] == "call.ended"]
    assert [(f["call_id"], f["reason"]) for f in ended] == [(call_id, "cancelled")]
    await desk.fire(timers.LOST_END, {"call_id": call_id})
    after = await desk.db.get_session(ended[0]["session_id"])
    assert after is not None
    assert (after.state, after.end_reason, after.answered_at) == ("abandoned", "cancelled", None)


async def test_one_node_forgets_an_ending_once_its_step_logged_it(desk: Desk) -> None:
    """The ending is kept for a step whose log append never came; once it came, one node
    drops it (its memory would grow with every call: tests/test_memory_steady.py)."""
    call_id = await connected_call(desk)
    await desk.drive(ALICE, m.CallHangup(call_id=call_id))
    assert await desk.s.router.ending(call_id) is None
