"""Offering calls to specialists: dispatch, the offer, its withdrawal, ring timeout,
overflow, and the specialist's answer: accept or decline.

An offer is numbered (`Call.offer_number`, the wire's `offer`): an answer naming an
older one finds it over. Each offer has its own ring timer (`timers.ring_key`).
"""

from __future__ import annotations

from typing import Final

from . import conference, recording, timers
from . import events as ev
from . import messages as m
from .errors import Refused
from .identity import Identity, Role, caller_of, principal_of, terminal_of
from .model import AgentState, Call, CallState, Offer
from .outbox import Outbox
from .parties import answer_logged, people, recorder
from .retry import REPORT_RETRY_S, again, retrying
from .services import Services
from .together import raised, together

TOLD_AGAIN_S: Final = 30.0
"""How recent a dead node's logged answer is told again by its survivor: far beyond its
send after the append (seconds on a loaded node) plus the wait to take it for dead."""


async def dispatch(s: Services) -> Outbox:
    """Offer what the router matched, all in one outbox: logged before anything else (a
    cancel, say) can withdraw one of them.

    Ring timers are set before the log (a node that dies before sending still has its
    offers withdrawn) and again after the sends: the ring time counts from the offer
    sent, as the console's countdown does, however long the log took.

    Tried again as one attempt (`retry.again`): a dispatch whose reply was lost answers
    the offers it made again, instead of making new ones (its offers would ring
    specialists nobody told, with no ring timer)."""
    return await again("dispatching", lambda: _dispatch(s))


async def _dispatch(s: Services) -> Outbox:
    """The offered calls read together (`together`): a dispatch after lunch or a Redis
    restart offers dozens, and one read after the other kept the step's specialist (and
    every offer's log append) waiting a round trip each."""
    out = s.outbox()
    offers = await s.router.dispatch(s.clock())
    calls = await together(s, *(s.router.get_call(offer.call_id) for offer in offers))
    for offer, call in zip(offers, calls, strict=True):
        if raised(call) is not None:
            _offer(s, out, call, offer)
    return out


def _offer(s: Services, out: Outbox, call: Call, offer: Offer) -> None:
    actor = principal_of(Role.SPECIALIST, offer.agent_id)
    out.event(ev.Offered(agent_id=offer.agent_id, offer=offer.offer, queue=call.queue,
                         via_overflow=offer.via_overflow), call, actor)
    out.agent_status(offer.agent_id, AgentState.RINGING, "offered")
    out.send(actor, offered_message(s, call, offer.offer, offer.via_overflow))
    ring = timers.ring(offer.call_id, offer.agent_id, offer.offer,
                       s.queues[offer.queue].ring_timeout_s)
    out.set_timer(ring, durable=True)
    out.set_timer(ring)  # again: the ring time counts from the offer sent


def offered_message(s: Services, call: Call, offer: int, via_overflow: bool) -> m.CallOffered:
    """`call.offered` for offer number `offer` of the call (also sent again on resume)."""
    enterprise = call.context.get("enterprise")
    return m.CallOffered(
        call_id=call.id,
        offer=offer,
        queue=call.queue,
        terminal=terminal_of(call).terminal_info(),
        ring_timeout_s=s.queues[call.queue].ring_timeout_s,
        enterprise=m.Enterprise(**enterprise) if enterprise else None,
        overflow_from=call.queue if via_overflow else None,
        joins=call.joins,
        invited_by=call.context.get("invited_by") if call.is_invitation else None,
        transfer=call.transfer_from is not None,
    )


def withdrawn(out: Outbox, call: Call, agent_id: str, reason: str) -> None:
    """The offer now over (`call.offer_number`): logged, and the specialist told."""
    out.event(ev.Withdrawn(agent_id=agent_id, offer=call.offer_number, reason=reason), call)
    out.send(principal_of(Role.SPECIALIST, agent_id),
             m.CallWithdrawn(call_id=call.id, offer=call.offer_number, reason=reason))
    out.cancel_timer(timers.ring_key(call.id, call.offer_number))


async def withdraw(s: Services, out: Outbox, call_id: str, agent_id: str, reason: str) -> None:
    """Take an offer back from a specialist who is gone; they are available again. Tried
    again as one attempt (`retry.again`): a lost reply is answered the same."""
    out.merge(await again(f"withdrawing {call_id} from {agent_id}",
                          lambda: _withdraw(s, call_id, agent_id, reason)))


async def _withdraw(s: Services, call_id: str, agent_id: str, reason: str) -> Outbox:
    out = s.outbox()
    call = await s.router.withdraw(call_id, agent_id, s.clock())
    if call is None:
        return out
    withdrawn(out, call, agent_id, reason)
    out.agent_status(agent_id, AgentState.AVAILABLE, reason)
    return out


async def ring_timeout(s: Services, call_id: str, agent_id: str, offer: int | None) -> Outbox:
    """Nobody answered offer `offer`: withdrawn; the specialist goes away after a streak.
    Tried again as one attempt (`retry.again`): a lost reply is answered the same, so
    `missed` is logged once and the specialist told (a timer run again after its node
    died is another attempt: it finds the offer over and does nothing)."""
    return await again(f"ring timeout of {call_id} for {agent_id}",
                       lambda: _ring_timeout(s, call_id, agent_id, offer))


async def _ring_timeout(s: Services, call_id: str, agent_id: str, offer: int | None
                        ) -> Outbox:
    out = s.outbox()
    out.dispatch = True
    result = await s.router.timeout(call_id, agent_id, s.clock(), offer)
    if result is None:
        return out
    call, went_away = result
    out.event(ev.Missed(agent_id=agent_id, offer=call.offer_number), call,
              principal_of(Role.SPECIALIST, agent_id))
    withdrawn(out, call, agent_id, "timeout")
    if went_away:
        out.agent_status(agent_id, AgentState.AWAY, "missed_offers")
    else:
        out.agent_status(agent_id, AgentState.AVAILABLE, "missed_offer")
    if call.is_invitation:
        await conference.after_refusal(s, out, call, "no_answer")
    return out


async def overflow(s: Services, call_id: str) -> Outbox:
    """The call waited `overflow_after_s`: its overflow queue's specialists may take it."""
    out = s.outbox()
    out.dispatch = True
    if not await s.router.overflow(call_id):
        return out
    call = await s.router.get_call(call_id)
    if call is not None:
        out.event(ev.Overflowed(to=s.queues[call.queue].overflow_to), call)
    return out


async def decline(s: Services, who: Identity, msg: m.CallDecline) -> Outbox:
    """The specialist turns the offer down. Tried again as one attempt (`retry.again`):
    a decline whose reply was lost is answered the same, so it is logged and told once."""
    return await again(f"{who.principal} declining {msg.call_id}",
                       lambda: _decline(s, who, msg))


async def _decline(s: Services, who: Identity, msg: m.CallDecline) -> Outbox:
    call = await s.router.decline(msg.call_id, who.id, s.clock(), msg.offer)
    out = s.outbox()
    out.cancel_timer(timers.ring_key(call.id, call.offer_number))
    out.set_timer(timers.unblock(call.id, who.id, s.queues[call.queue].decline_block_s))
    out.event(ev.Declined(agent_id=who.id, offer=call.offer_number), call, who.principal)
    out.send(who.principal, m.CallWithdrawn(call_id=call.id, offer=call.offer_number,
                                            reason="declined"))
    out.agent_status(who.id, AgentState.AVAILABLE, "declined")
    if call.is_invitation:
        await conference.after_refusal(s, out, call, "declined")
    out.dispatch = True
    return out


async def accept(s: Services, who: Identity, msg: m.CallAccept) -> Outbox:
    """The specialist takes the call (or joins the call an invitation is for).

    The answer is tried again while the backend fails: the transaction's reply may be lost
    after it ran (Redis restarted), or a read after it may fail (the recorder, the
    participants); the Redis router answers the same attempt again with the same call and
    numbers (`answers.ACCEPT`), so `answered` is logged once and nobody is left untold."""
    if conference.is_invitation_id(msg.call_id):  # no read on the path of a plain answer
        pending = await s.router.get_call(msg.call_id)
        if pending is not None and pending.is_invitation:
            return await conference.join(s, who, pending, msg.offer)
    now = s.clock()  # the same on each attempt: a retry is known as the same answer
    return await retrying(REPORT_RETRY_S, f"accepting {msg.call_id} for {who.principal}",
                          lambda: _answer(s, who, msg, now))


async def answer_again(s: Services, call_id: str, agent_id: str, at: float) -> Outbox:
    """An answer made by a node that died (taken over: `server/cluster/backends.py`), run
    again by a survivor when the log does not have it: the node was killed between the
    router's accept and its append, so the call is connected with nobody told (or told by
    a resume on another node) and the log has it waiting. The same specialist at the same
    time gets the same answer and numbers (`answers.ACCEPT`), so `answered` is logged once
    and the parties hear `call.connected`. Nothing to do for a call no longer connected
    to that specialist; one whose answer is logged is only told again if it is recent
    (`told_again`)."""
    call = await s.router.get_call(call_id)
    if call is None or call.state != CallState.CONNECTED or agent_id not in call.agents:
        return s.outbox()
    if await answer_logged(s, call):
        return await told_again(s, call, agent_id, at)
    agent = await s.router.get_agent(agent_id)
    who = Identity(role=Role.SPECIALIST, id=agent_id, name=agent.name if agent else agent_id,
                   skills=dict(agent.skills) if agent else {},
                   department=agent.department if agent else None)
    return await retrying(REPORT_RETRY_S, f"logging the answer of {call_id} by {agent_id}",
                          lambda: _answer(s, who, m.CallAccept(call_id=call_id), at))


async def _answer(s: Services, who: Identity, msg: m.CallAccept, now: float) -> Outbox:
    call = await s.router.accept(msg.call_id, who.id, now, msg.offer)
    s.status.forget(call.id)
    if s.appointments is not None and call.answered_at == now:
        await s.appointments.answered(call.context, s.utcnow())
    out = s.outbox()
    out.cancel_timer(timers.ring_key(call.id, call.offer_number))
    out.cancel_timer(timers.overflow_key(call.id))
    out.event(ev.Answered(agent_id=who.id, agent_name=who.name, offer=call.offer_number,
                          wait_s=round(s.status.open_wait(call.queue, call.enqueued_at, now), 3)),
              call, who.principal)
    caller = caller_of(call)
    if call.answered_at == now:
        out.event(ev.ParticipantJoined(participant_id=caller.principal,
                                       role=caller.role.value, principal_id=caller.id,
                                       name=caller.name), call, caller.principal)
    out.event(ev.ParticipantJoined(participant_id=who.principal, role=Role.SPECIALIST.value,
                                   principal_id=who.id, name=who.name), call, who.principal)
    out.agent_status(who.id, AgentState.IN_CALL, "answered")
    names = {who.id: who.name}
    await _tell_connected(s, out, call, await recording.connected(s, out, call, names), names)
    out.changed(call.queue)
    return out


async def told_again(s: Services, call: Call, agent_id: str, at: float) -> Outbox:
    """A dead node's answer it logged, and may not have told: killed between its append
    and its sends (the goal-size day's `c_28f724f58ed0662e`, answered 0.7 s before node 1
    was killed: the kiosk, on the surviving node, never heard `call.connected` and gave up
    after 166 s; the specialist was told again by its resume). One made within
    `TOLD_AGAIN_S` of now is replayed in routing, which takes the same numbers again
    (`answers.ACCEPT`), and `call.connected` goes under them: a member whose line had it
    drops it as heard twice, one whose line gave the number up hears it late, one whose
    resume told it since drops it as stale (`server/cluster/reorder.py`)."""
    out = s.outbox()
    if at < s.clock() - TOLD_AGAIN_S:
        return out
    try:
        call = await s.router.accept(call.id, agent_id, at)
    except Refused:  # answered again since (a transfer, a second department): told then
        return out
    await _tell_connected(s, out, call, await recording.told_again(s, out, call))
    return out


async def _tell_connected(s: Services, out: Outbox, call: Call, recorded_by: str | None,
                          names: dict[str, str] | None = None) -> None:
    """Each member of the just-answered call hears `call.connected`."""
    members = await people(s, call, names)
    listed = members + ([] if recorded_by is None else [recorder(recorded_by)])
    for member in members:
        out.send(member.id, m.CallConnected(call_id=call.id, session_id=call.session_id,
                                            you=member.id, participants=listed,
                                            recording=recorded_by is not None))
