"""A hand-over to a phone made by a node killed between the routing transaction and its
append (issue 16's goal-size day, `c_11ba988aa2607045`: the kiosk's waiting call went
over to a phone 2 s before node 1 was killed; routing had the phone as the caller, the
phone was answered, and the log never said it took the call over). The survivor that
takes the node over finds it among the node's recent hand-offs (`ho:<instance>`) and logs
it at the hand-over's time, with the phone's grace if it never attached; a logged
hand-over is left alone. Real Redis router, both session logs."""

from __future__ import annotations

import datetime as dt

from redis.asyncio import Redis

from server.cluster.keys import ENDS_WATCHED_S, recent_handoffs
from server.cluster.router import RedisRouter
from signaling import handoff, timers
from signaling import messages as m
from signaling.commit import commit
from signaling.identity import Role, principal_of
from tests.switchboard.conftest import ALICE, KIOSK, Desk, Sink
from tests.switchboard.test_steps import queued_call


def _router(desk: Desk) -> RedisRouter:
    router = desk.s.router
    assert isinstance(router, RedisRouter)
    return router


async def _ticket(desk: Desk) -> tuple[str, str]:
    """The kiosk's waiting call (Alice logged in, away) and the ticket it shows for a
    phone."""
    if ALICE.principal not in desk.sinks:
        await desk.connect(ALICE)
    call_id = await queued_call(desk)
    await desk.drive(KIOSK, m.CallHandoff(call_id=call_id))
    ready = next(f for f in desk.sinks[KIOSK.principal].frames
                 if f["type"] == "call.handoff_ready")
    return call_id, str(ready["url"]).removeprefix(handoff.PAGE_PATH)


async def test_the_survivor_logs_a_dead_nodes_unlogged_hand_over_once(
        survivor: Desk, dead: Desk, redis: Redis, key_prefix: str) -> None:
    call_id, ticket = await _ticket(survivor)
    dead.clock.now = survivor.clock.now + 7.0
    visitor, _ = await handoff.open_ticket(dead.s, ticket, None)  # killed before its commit
    handed = await _router(survivor).handed_off_by("dead.1")
    assert handed == [(call_id, dead.clock.now)]
    assert 0 < await redis.ttl(recent_handoffs(key_prefix, "dead.1")) <= 2 * ENDS_WATCHED_S

    out = await handoff.handoffs_again(survivor.s, handed)
    assert [t.key for t in out.durable_timers] == [timers.grace_key(visitor.principal)]
    await commit(survivor.s, out)
    await survivor.board.handoffs_again(handed)  # a second run: logged already

    call = await survivor.s.router.get_call(call_id)
    assert call is not None and call.visitor == visitor.id
    session = await survivor.db.get_session(call.session_id)
    assert session is not None
    offs = [e for e in session.events if e.type == "handed_off"]
    assert [(e.data["participant_id"], e.data["terminal_id"], e.actor) for e in offs] == [
        (visitor.principal, KIOSK.id, visitor.principal)]
    assert offs[0].ts == dt.datetime.fromtimestamp(dead.clock.now, dt.UTC)
    assert visitor.principal in {p.participant_id for p in session.participants}


async def test_a_logged_hand_over_is_left_alone_and_an_attached_phone_gets_no_grace(
        survivor: Desk, dead: Desk) -> None:
    """The survivor's own hand-over, committed: nothing again. The dead node's, whose
    phone attached on the survivor before the takeover: logged, with no grace timer (its
    `welcome` cancelled the first one; it has a presence to lose)."""
    logged_id, logged_ticket = await _ticket(survivor)
    _, out = await handoff.open_ticket(survivor.s, logged_ticket, None)
    await commit(survivor.s, out)
    again = await handoff.handoffs_again(survivor.s, [(logged_id, survivor.clock.now),
                                                      ("c_unknown", survivor.clock.now)])
    assert (again.events, again.durable_timers) == ([], [])

    survivor.sinks[KIOSK.principal].frames.clear()
    call_id, ticket = await _ticket(survivor)
    visitor, _ = await handoff.open_ticket(dead.s, ticket, None)  # killed before its commit
    assert await survivor.board.open_ticket(ticket, None) == visitor  # used: no presence yet
    await survivor.board.connect(visitor, Sink(), None)
    assert (await survivor.s.presences.get(principal_of(Role.VISITOR, visitor.id))) is not None
    out = await handoff.handoffs_again(survivor.s, await _router(survivor).handed_off_by(
        "dead.1"))
    assert [(e.type, e.call_id) for e in out.events] == [("handed_off", call_id)]
    assert out.durable_timers == []
