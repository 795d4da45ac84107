"""Several departments in one session: `call.invite`, `call.transfer`, joining and leaving.

An invitation is routed like a call (a `Call` with `joins` set, offered with the
caller's context, ring timeout, decline); the specialist who accepts joins the
connected call instead of starting a new one. Up to four participants form a
mesh: the newcomer offers to everyone already there (and to the recorder).
"""

from __future__ import annotations

import secrets

from . import events as ev
from . import messages as m
from . import timers
from .acd import REQUEUE_PRIORITY
from .errors import Refused
from .identity import Identity, Role, principal_of
from .model import AgentState, Call, CallState
from .outbox import Outbox
from .parties import participants
from .retry import again
from .services import Services

MAX_PARTICIPANTS = 4  # terminal + three specialists: a mesh browsers still carry well
INVITATION_PREFIX = "i_"  # an invitation's id (a call's is "c_"): an answer tells them apart


def is_invitation_id(call_id: str) -> bool:
    return call_id.startswith(INVITATION_PREFIX)


async def invite(s: Services, who: Identity, msg: m.CallInvite | m.CallTransfer) -> Outbox:
    transfer = isinstance(msg, m.CallTransfer)
    call = await s.router.get_call(msg.call_id)
    if call is None or call.state != CallState.CONNECTED or who.id not in call.agents:
        raise Refused("not_in_call", f"you are not in connected call {msg.call_id}")
    if (msg.queue is None) == (msg.specialist is None):
        raise Refused("invalid_message", "name exactly one of `queue` or `specialist`")
    if 1 + len(call.agents) >= MAX_PARTICIPANTS:
        raise Refused("call_full", f"a session holds at most {MAX_PARTICIPANTS} participants")
    if await pending_invitations(s, call.terminal_id, call.id):
        raise Refused("invite_pending", "an invitation into this call is still ringing")
    queue = await _queue_for(s, call, msg)
    invitation = Call(
        id=INVITATION_PREFIX + secrets.token_hex(8),
        session_id=call.session_id,
        queue=queue,
        terminal_id=call.terminal_id,
        enqueued_at=s.clock(),
        priority=REQUEUE_PRIORITY,
        declined_by=list(call.agents),
        context=dict(call.context, invited_by=who.principal),
        joins=call.id,
        target_agent=msg.specialist,
        transfer_from=who.id if transfer else None,
    )
    await s.router.enqueue(invitation)
    out = s.outbox()
    out.event(ev.Invited(invitation_id=invitation.id, queue=queue, specialist=msg.specialist,
                         transfer=transfer), call, who.principal)
    await _tell_members(s, out, call, invitation, "ringing")
    out.dispatch = True
    out.changed(queue)
    return out


async def _queue_for(s: Services, call: Call, msg: m.CallInvite | m.CallTransfer) -> str:
    if msg.specialist is None:
        assert msg.queue is not None
        reason = await s.router.check_open(msg.queue)
        if reason is not None:
            raise Refused(reason, f"queue {msg.queue} cannot take an invitation ({reason})")
        return msg.queue
    if msg.specialist in call.agents:
        raise Refused("already_in_call", f"{msg.specialist} is already in this call")
    agent = await s.router.get_agent(msg.specialist)
    if agent is None or not agent.connected:
        raise Refused("specialist_unavailable", f"{msg.specialist} is not logged in")
    if agent.state != AgentState.AVAILABLE:
        raise Refused("specialist_unavailable", f"{msg.specialist} is {agent.state.value}")
    if call.queue in agent.skills:
        return call.queue
    return min(agent.skills, key=lambda q: agent.skills[q])


async def pending_invitations(s: Services, terminal_id: str, call_id: str) -> list[Call]:
    """The invitations into call `call_id` of terminal `terminal_id` still pending."""
    return [c for c in await s.router.calls_of_terminal(terminal_id) if c.joins == call_id]


async def join(s: Services, who: Identity, invitation: Call, offer: int | None) -> Outbox:
    """The invited specialist answers: they join the call and offer to everyone in it.
    Tried again as one attempt (`retry.again`): a join whose reply was lost is answered
    the same, so it is logged and told once."""
    return await again(f"{who.principal} joining {invitation.joins}",
                       lambda: _join(s, who, invitation, offer))


async def _join(s: Services, who: Identity, invitation: Call, offer: int | None) -> Outbox:
    call = await s.router.join(invitation.id, who.id, s.clock(), offer)
    s.link.calls_changed([call.id])
    out = s.outbox()
    out.cancel_timer(timers.ring_key(invitation.id, invitation.offer_number))
    out.event(ev.ParticipantJoined(participant_id=who.principal, role=Role.SPECIALIST.value,
                                   principal_id=who.id, name=who.name,
                                   invitation_id=invitation.id), call, who.principal)
    out.agent_status(who.id, AgentState.IN_CALL, "joined")
    listed = await participants(s, call)
    recording = any(p.role == "recorder" for p in listed)
    newcomer = m.Participant(id=who.principal, role="specialist", name=who.name)
    for member in listed:
        if member.id == who.principal:
            out.send(member.id, m.CallConnected(
                call_id=call.id, session_id=call.session_id, you=who.principal,
                participants=listed, recording=recording))
        else:
            out.send(member.id, m.ParticipantJoined(call_id=call.id, participant=newcomer))
    await _tell_members(s, out, call, invitation, "accepted", skip=who.principal)
    out.changed(invitation.queue)
    if invitation.transfer_from is not None:
        await leave(s, out, call, invitation.transfer_from, "transferred")
    return out


async def leave(s: Services, out: Outbox, call: Call, agent_id: str, reason: str) -> None:
    """One specialist leaves; the session goes on while the terminal and one specialist remain.
    Tried again as one attempt (`retry.again`): a lost reply is answered the same."""
    out.merge(await again(f"{agent_id} leaving {call.id}",
                          lambda: _leave(s, call, agent_id, reason)))


async def _leave(s: Services, call: Call, agent_id: str, reason: str) -> Outbox:
    out = s.outbox()
    left = await s.router.leave(call.id, agent_id, s.clock())
    if left is None:
        raise Refused("not_in_call", f"{agent_id} cannot leave call {call.id}")
    s.link.calls_changed([call.id])
    leaver = principal_of(Role.SPECIALIST, agent_id)
    out.event(ev.ParticipantLeft(participant_id=leaver, reason=reason), left, leaver)
    out.agent_status(agent_id, AgentState.WRAP_UP, reason)
    out.send(leaver, m.CallEnded(call_id=call.id, session_id=call.session_id, reason=reason,
                                 by=leaver))
    for member in await participants(s, left):
        out.send(member.id, m.ParticipantLeft(call_id=call.id, participant=leaver,
                                              reason=reason))
    out.set_timer(timers.wrapup(agent_id, s.queues[call.queue].wrapup_s))
    return out


async def cancel(s: Services, out: Outbox, invitation_id: str, reason: str) -> None:
    """Take an invitation back (declined, unanswered, or the call ended). Tried again as
    one attempt (`retry.again`): a lost reply is answered the same."""
    out.merge(await again(f"cancelling {invitation_id}",
                          lambda: _cancel(s, invitation_id, reason)))


async def _cancel(s: Services, invitation_id: str, reason: str) -> Outbox:
    out = s.outbox()
    invitation = await s.router.remove(invitation_id, s.clock())
    if invitation is None:
        return out
    out.cancel_timer(timers.ring_key(invitation_id, invitation.offer_number))
    call = await s.router.get_call(invitation.joins or "")
    if invitation.ringing_agent is not None:
        agent = principal_of(Role.SPECIALIST, invitation.ringing_agent)
        out.send(agent, m.CallWithdrawn(call_id=invitation_id, offer=invitation.offer_number,
                                        reason=reason))
        out.agent_status(invitation.ringing_agent, AgentState.AVAILABLE, reason)
    out.note(ev.InviteCancelled(invitation_id=invitation_id, reason=reason),
             session_id=invitation.session_id, call_id=invitation.joins)
    if call is not None:
        await _tell_members(s, out, call, invitation, reason)
    out.dispatch = True
    out.changed(invitation.queue)
    return out


async def after_refusal(s: Services, out: Outbox, invitation: Call, reason: str) -> None:
    """A named specialist declined or let it ring out: nobody else may take it."""
    if invitation.target_agent is not None:
        await cancel(s, out, invitation.id, reason)


async def _tell_members(s: Services, out: Outbox, call: Call, invitation: Call, state: str,
                        skip: str | None = None) -> None:
    status = m.InvitationStatus(call_id=call.id, invitation_id=invitation.id, state=state,
                                queue=invitation.queue, specialist=invitation.target_agent,
                                transfer=invitation.transfer_from is not None)
    for member in await participants(s, call):
        if member.role != "recorder" and member.id != skip:
            out.send(member.id, status)
