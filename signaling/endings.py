"""How a call ends: hang-up, abandon, requeue after a lost specialist, and wrap-up.

Wrap-up is the specialist's time after a call (`[[queues]] wrapup_s`), ended by
`agent.wrapup_done` or its timer; the session's notes and the caller's rating
may be saved after the end by anyone who took part.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Literal

from . import conference, recording, timers
from . import events as ev
from . import messages as m
from .backend import Ending
from .errors import Refused
from .identity import Identity, Role, caller_principal, members_of, principal_of
from .model import AgentState, Call, CallState
from .offers import withdrawn
from .outbox import Outbox
from .parties import participants, resync, settled_answer
from .retry import again
from .services import Services

LET_GO_TRIES = 4  # reads of a call that keeps changing under a caller who leaves it

async def own_call(s: Services, who: Identity, call_id: str) -> Call:
    """The caller's own call (not an invitation into it): a terminal's until a phone took
    it over, then only that visitor's."""
    call = await s.router.get_call(call_id)
    if call is None or call.is_invitation or caller_principal(call) != who.principal:
        raise Refused("not_in_call", f"call {call_id} is not yours")
    return call


async def member_call(s: Services, who: Identity, call_id: str) -> Call:
    """A call the sender is a member of."""
    call = await s.router.get_call(call_id)
    if call is None or who.principal not in members_of(call):
        raise Refused("not_in_call", f"call {call_id} is not yours")
    return call


async def call_cancel(s: Services, who: Identity, msg: m.CallCancel) -> Outbox:
    """The caller gives up waiting. A call answered meanwhile is hung up: the caller hears
    `call.connected` (again, `resumed`), then `call.ended`. Its answer must be in the log first
    (`parties.settled_answer`; issue 16's two kiosk cancels logged `ended` with no answer
    and no `call.connected`: the answering node was killed before its append). Never
    logged, the call is abandoned: the log and the kiosk both have it unanswered."""
    out = s.outbox()
    settled, logged = await settled_answer(s, await own_call(s, who, msg.call_id))
    call = await own_call(s, who, msg.call_id) if settled is None else settled
    if call.state == CallState.CONNECTED and not logged:
        await end(s, out, call, "cancelled", who.principal, answered=False)
    elif call.state == CallState.CONNECTED:
        # The answer's own `call.connected` may still be on its way from the answering
        # node (relayed), and this node's `call.ended` would overtake it: told here first.
        out.send(who.principal, await resync(s, call, who.principal))
        await end(s, out, call, "hangup", who.principal)
    else:  # answered since the read: nothing abandoned, the kiosk hears it connected
        await abandon(s, out, call.id, "cancelled")
    return out


async def let_go(s: Services, out: Outbox, call: Call, connected: str, waiting: str,
                 by: str) -> None:
    """A caller gone for good leaves the call as it stands: ended if connected (`connected`
    is the reason), abandoned if waiting (`waiting`). Each is one transaction that changes
    nothing when the call moved on since it was read: answered meanwhile, or put back in the queue
    by its specialist's own release (a kiosk and its specialist that leave together have
    their resume graces run out together, on different nodes). Then the call is read
    again and let go as it stands now: a call left to a caller who is gone waits for ever."""
    for _ in range(LET_GO_TRIES):
        if call.state == CallState.CONNECTED:
            if await end(s, out, call, connected, by):
                return
        elif await abandon(s, out, call.id, waiting):
            return
        fresh = await s.router.get_call(call.id)
        if fresh is None:
            return
        call = fresh


async def hangup(s: Services, who: Identity, msg: m.CallHangup) -> Outbox:
    """A kiosk's own calls (its call's invitations among them) are read beside its call on
    a cluster: each read is a Redis round trip the kiosk waits for `call.ended`."""
    out = s.outbox()
    early = None if s.link.alone or who.role != Role.TERMINAL else \
        Invitations.read(s, who.id, msg.call_id)
    try:
        call = await member_call(s, who, msg.call_id)
        if call.state != CallState.CONNECTED:
            if who.role != Role.TERMINAL:
                raise Refused("not_in_call", f"call {call.id} is not connected")
            await abandon(s, out, call.id, "cancelled")
        elif who.role == Role.SPECIALIST and len(call.agents) > 1:
            await conference.leave(s, out, call, who.id, "left")
        else:
            await end(s, out, call, "hangup", who.principal, early=early)
    finally:
        if early is not None:
            await early.close()
    return out


async def abandon(s: Services, out: Outbox, call_id: str, reason: str) -> bool:
    """The caller leaves (or is lost) before being served; a ringing offer is withdrawn.
    False when the call was not waiting (any more). Tried again as one attempt
    (`retry.again`): a lost reply is answered the same."""
    done = await again(f"abandoning {call_id}", lambda: _abandon(s, call_id, reason))
    if done is None:
        return False
    out.merge(done)
    return True


async def _abandon(s: Services, call_id: str, reason: str) -> Outbox | None:
    out = s.outbox()
    now = s.clock()
    call = await s.router.remove(call_id, now, Ending(at=now, reason=reason))
    if call is None:
        return None
    out.logged.append(functools.partial(s.router.ending_logged, call_id))
    out.cancel_timer(timers.overflow_key(call_id))
    s.status.forget(call_id)
    if call.ringing_agent is not None:
        withdrawn(out, call, call.ringing_agent, reason)
        out.agent_status(call.ringing_agent, AgentState.AVAILABLE, reason)
    caller = caller_principal(call)
    out.event(ev.Abandoned(reason=reason), call, caller)
    out.send(caller, m.CallEnded(call_id=call_id, session_id=call.session_id, reason=reason))
    out.dispatch = True
    out.changed(call.queue)
    return out


async def end(s: Services, out: Outbox, call: Call, reason: str, by: str | None,
              answered: bool = True, early: Invitations | None = None) -> bool:
    """The call is over for everyone: its specialists go to wrap-up, invitations go back.
    False when the call was not connected (any more). From the hang-up on, tried again as
    one attempt (`retry.again`): a lost reply of the hang-up is answered the same, so
    `ended` is logged once and everyone told. Not `answered` in the log: `abandoned`
    (`call_cancel`). On a cluster the invitations are read beside the hang-up's
    transaction (`Invitations`), or earlier (`early`, the kiosk's `hangup`)."""
    members = members_of(call)
    invitations = early or await Invitations.start(s, call.terminal_id, call.id)
    try:
        done = await again(f"ending {call.id}",
                           lambda: _end(s, call, reason, by, members, invitations, answered))
    finally:
        if early is None:
            await invitations.close()
    if done is None:
        return False
    out.merge(done)
    return True


class Invitations:
    """The pending invitations into a call, read beside whatever the step waits for next
    on a cluster (a node alone reads them at once: its memory router never suspends). A
    read that failed is made again when they are needed, inside the step's attempt."""

    def __init__(self, s: Services, terminal_id: str, call_id: str,
                 reading: asyncio.Future[list[Call]]) -> None:
        self.s, self.terminal_id, self.call_id, self._reading = s, terminal_id, call_id, reading

    @classmethod
    def read(cls, s: Services, terminal_id: str, call_id: str) -> Invitations:
        """Started now, in a task of its own."""
        return cls(s, terminal_id, call_id, asyncio.ensure_future(
            conference.pending_invitations(s, terminal_id, call_id)))

    @classmethod
    async def start(cls, s: Services, terminal_id: str, call_id: str) -> Invitations:
        if not s.link.alone:
            return cls.read(s, terminal_id, call_id)
        done: asyncio.Future[list[Call]] = asyncio.get_running_loop().create_future()
        done.set_result(await conference.pending_invitations(s, terminal_id, call_id))
        return cls(s, terminal_id, call_id, done)

    async def get(self) -> list[Call]:
        try:
            return await asyncio.shield(self._reading)
        except Exception:  # Redis failed this read: once more, as the step's attempt does
            return await conference.pending_invitations(self.s, self.terminal_id,
                                                        self.call_id)

    async def close(self) -> None:
        """Not needed after all (the call was not connected): the read stopped."""
        if not self._reading.done():
            self._reading.cancel()
        await asyncio.gather(self._reading, return_exceptions=True)


async def _end(s: Services, call: Call, reason: str, by: str | None, members: set[str],
               invitations: Invitations, answered: bool) -> Outbox | None:
    out = s.outbox()
    now = s.clock()
    ended = await s.router.hangup(call.id, now, Ending(
        at=now, reason=reason, by=by, answered=answered,
        members=tuple(sorted(members)) if answered else ()))
    if ended is None:
        return None
    out.logged.append(functools.partial(s.router.ending_logged, call.id))
    s.link.calls_changed([call.id])
    out.event(ev.Ended(reason=reason, by=by) if answered else ev.Abandoned(reason=reason),
              ended, by)
    for member in sorted(members):
        if answered:  # else nobody joined, in the log
            out.event(ev.ParticipantLeft(participant_id=member, reason=reason), ended, member)
        out.send(member, m.CallEnded(call_id=call.id, session_id=call.session_id,
                                     reason=reason, by=by))
    wrapup_s = s.queues[call.queue].wrapup_s
    for agent_id in ended.agents:
        out.agent_status(agent_id, AgentState.WRAP_UP, reason)
        out.set_timer(timers.wrapup(agent_id, wrapup_s), durable=True)
    await recording.ended(s, out, ended, reason)
    for invitation in await invitations.get():
        await conference.cancel(s, out, invitation.id, "call_ended")
    out.changed(call.queue)
    return out


async def requeue(s: Services, out: Outbox, call_id: str, agent_id: str) -> None:
    """A specialist was lost in the call: alone, the caller goes back to the queue first.
    Tried again as one attempt (`retry.again`): a lost reply is answered the same."""
    out.merge(await again(f"requeueing {call_id} without {agent_id}",
                          lambda: _requeue(s, call_id, agent_id)))


async def _requeue(s: Services, call_id: str, agent_id: str) -> Outbox:
    out = s.outbox()
    call = await s.router.requeue(call_id, agent_id, s.clock())
    if call is None:
        return out
    s.link.calls_changed([call_id])
    agent = principal_of(Role.SPECIALIST, agent_id)
    out.event(ev.ParticipantLeft(participant_id=agent, reason="agent_lost"), call, agent)
    if call.state == CallState.CONNECTED:  # other specialists stay with the caller
        for member in await participants(s, call):
            out.send(member.id, m.ParticipantLeft(call_id=call_id, participant=agent,
                                                  reason="agent_lost"))
    if call.state == CallState.QUEUED:
        out.event(ev.Requeued(agent_id=agent_id, reason="agent_lost"), call)
        await recording.ended(s, out, call, "requeued")
        position = await s.router.position(call_id) or 1
        estimate = await s.status.estimate(call.queue, position)
        s.status.sent_position(call.queue, call_id, position)
        out.send(caller_principal(call),
                 m.CallRequeued(call_id=call_id, position=position, estimated_wait_s=estimate,
                                reason="agent_lost"))
    out.dispatch = True
    return out


async def finish_wrapup(s: Services, agent_id: str, reason: str) -> Outbox | None:
    """Wrap-up over: the specialist is available again. None if they were not in it.
    Tried again as one attempt (`retry.again`): a lost reply is answered the same."""
    return await again(f"ending the wrap-up of {agent_id}",
                       lambda: _finish_wrapup(s, agent_id, reason))


async def _finish_wrapup(s: Services, agent_id: str, reason: str) -> Outbox | None:
    if not await s.router.wrapup_done(agent_id, s.clock()):
        return None
    out = s.outbox()
    out.cancel_timer(timers.wrapup_key(agent_id))
    out.agent_status(agent_id, AgentState.AVAILABLE, reason)
    out.dispatch = True
    out.changed_all()
    return out


async def wrapup_done(s: Services, who: Identity, msg: m.AgentWrapupDone) -> Outbox:
    del msg
    out = await finish_wrapup(s, who.id, "wrapup_done")
    if out is None:
        raise Refused("not_in_wrapup", "you are not in wrap-up")
    return out


async def rate(s: Services, who: Identity, msg: m.SessionRate) -> Outbox:
    """The caller's rating of a session it took part in."""
    return await _session_note(s, who, msg.session_id, "rating",
                               ev.Rating(score=msg.score, comment=msg.comment or ""))


async def wrapup_notes(s: Services, who: Identity, msg: m.SessionWrapup) -> Outbox:
    """The specialist's outcome and notes of a session they took part in."""
    return await _session_note(s, who, msg.session_id, "wrapup",
                               ev.Wrapup(agent_id=who.id, outcome=msg.outcome, notes=msg.notes))


async def _session_note(s: Services, who: Identity, session_id: str,
                        what: Literal["rating", "wrapup"],
                        payload: ev.Payload) -> Outbox:
    members = await s.session_log.session_members(session_id)
    if members is None or who.principal not in members:
        raise Refused("not_in_session", f"you took no part in session {session_id}")
    out = s.outbox()
    out.note(payload, session_id=session_id, actor=who.principal)
    out.send(who.principal, m.Saved(what=what, session_id=session_id))
    return out
