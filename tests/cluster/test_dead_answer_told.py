"""An answer its node logged and was killed before telling (issue 16's goal-size day,
`c_28f724f58ed0662e`: the kiosk, on the surviving node, never heard `call.connected`):
the survivor replays it in routing for its numbers and tells the members again; an
older answer is left alone. Real Redis router; the survivor's own log."""

from __future__ import annotations

from server.cluster.router import RedisRouter
from signaling import messages as m
from signaling import order
from signaling.offers import TOLD_AGAIN_S
from signaling.switchboard import ANY, STEPS
from tests.switchboard.conftest import ALICE, KIOSK, Desk


async def _answered_unsent(survivor: Desk, dead: Desk) -> tuple[str, float]:
    """The kiosk waits on the survivor; Alice's answer runs on the dead node and its
    events are logged, its sends never made: (call id, the answer's time)."""
    await dead.connect(ALICE)
    await dead.drive(ALICE, m.AgentStatus(status="available"))
    await survivor.connect(KIOSK)
    await survivor.drive(KIOSK, m.CallRequest(queue="tax"))
    frames = survivor.sinks[KIOSK.principal].frames
    call_id = next(f["call_id"] for f in frames if f["type"] == "call.queued")
    step = STEPS.get((ALICE.role, m.CallAccept)) or STEPS[(ANY, m.CallAccept)]
    out = await step(dead.s, ALICE, m.CallAccept(call_id=call_id, offer=1))
    await dead.db.append(out.events)
    order.take_all()  # its numbers die with it
    router = dead.s.router
    assert isinstance(router, RedisRouter)
    ((answered, _, at),) = await router.answered_by("dead.1")
    assert answered == call_id
    return call_id, at


async def test_the_survivor_tells_a_recent_answer_its_node_logged_and_never_sent(
        survivor: Desk, dead: Desk) -> None:
    call_id, at = await _answered_unsent(survivor, dead)
    kiosk = survivor.sinks[KIOSK.principal].frames
    assert "call.connected" not in [f["type"] for f in kiosk]

    await survivor.board.answer_again(call_id, ALICE.id, at)

    (connected,) = [f for f in kiosk if f["type"] == "call.connected"]
    assert (connected["call_id"], connected["you"]) == (call_id, KIOSK.principal)
    assert [p["id"] for p in connected["participants"]] == [KIOSK.principal, ALICE.principal]
    session = await survivor.db.get_session(connected["session_id"])
    assert session is not None
    assert [e.type for e in session.events].count("answered") == 1


async def test_an_older_logged_answer_is_not_told_again(survivor: Desk, dead: Desk) -> None:
    """Its node lived on `TOLD_AGAIN_S` after it: its sends were made."""
    call_id, at = await _answered_unsent(survivor, dead)
    survivor.clock.now = at + TOLD_AGAIN_S + 1
    await survivor.board.answer_again(call_id, ALICE.id, at)
    assert "call.connected" not in [f["type"] for f in survivor.sinks[KIOSK.principal].frames]
