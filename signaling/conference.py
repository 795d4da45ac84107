"""Several departments in one session: `call.invite`, `call.transfer`, joining and leaving.

An invitation is routed like a call (a `Call` with `joins` set, offered with the
caller's context, ring timeout, decline); the specialist who accepts joins the
connected call instead of starting a new one. Up to four participants form a
mesh: the newcomer offers to everyone already there (and to the recorder).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Final

from . import events as ev
from . import messages as m
from .acd import REQUEUE_PRIORITY
from .backend import ring_timer
from .errors import Refused
from .identity import Identity, principal_of
from .model import AgentState, Call, CallState

if TYPE_CHECKING:
    from .batch import Batch
    from .switchboard import Switchboard

MAX_PARTICIPANTS = 4  # terminal + three specialists: a mesh browsers still carry well
SPECIALIST: Final = "specialist"


async def invite(board: Switchboard, who: Identity, msg: m.CallInvite | m.CallTransfer) -> None:
    transfer = isinstance(msg, m.CallTransfer)
    call = await board.router.get_call(msg.call_id)
    if call is None or call.state != CallState.CONNECTED or who.id not in call.agents:
        raise Refused("not_in_call", f"you are not in connected call {msg.call_id}")
    if (msg.queue is None) == (msg.specialist is None):
        raise Refused("invalid_message", "name exactly one of `queue` or `specialist`")
    if 1 + len(call.agents) >= MAX_PARTICIPANTS:
        raise Refused("call_full", f"a session holds at most {MAX_PARTICIPANTS} participants")
    if await pending_invitations(board, call):
        raise Refused("invite_pending", "an invitation into this call is still ringing")
    queue = await _queue_for(board, call, msg)
    now = board.clock()
    invitation = Call(
        id="i_" + secrets.token_hex(8),
        session_id=call.session_id,
        queue=queue,
        terminal_id=call.terminal_id,
        enqueued_at=now,
        priority=REQUEUE_PRIORITY,
        declined_by=list(call.agents),
        context=dict(call.context, invited_by=who.principal),
        joins=call.id,
        target_agent=msg.specialist,
        transfer_from=who.id if transfer else None,
    )
    await board.router.enqueue(invitation)
    batch = board.batch()
    batch.event(ev.INVITED, call, who.principal, invitation_id=invitation.id, queue=queue,
                specialist=msg.specialist, transfer=transfer)
    await _tell_members(board, batch, call, invitation, "ringing")
    await batch.commit()
    await board.dispatch()
    board.watch.changed(queue)


async def _queue_for(board: Switchboard, call: Call, msg: m.CallInvite | m.CallTransfer) -> str:
    if msg.specialist is None:
        assert msg.queue is not None
        reason = await board.router.check_open(msg.queue)
        if reason is not None:
            raise Refused(reason, f"queue {msg.queue} cannot take an invitation ({reason})")
        return msg.queue
    if msg.specialist in call.agents:
        raise Refused("already_in_call", f"{msg.specialist} is already in this call")
    agent = await board.router.get_agent(msg.specialist)
    if agent is None or not agent.connected:
        raise Refused("specialist_unavailable", f"{msg.specialist} is not logged in")
    if agent.state != AgentState.AVAILABLE:
        raise Refused("specialist_unavailable", f"{msg.specialist} is {agent.state.value}")
    if call.queue in agent.skills:
        return call.queue
    return min(agent.skills, key=lambda q: agent.skills[q])


async def pending_invitations(board: Switchboard, call: Call) -> list[Call]:
    return [c for c in await board.router.calls_of_terminal(call.terminal_id)
            if c.joins == call.id]


async def accept(board: Switchboard, who: Identity, invitation: Call, offer: int | None
                 ) -> None:
    """The invited specialist answers: they join the call and offer to everyone in it."""
    now = board.clock()
    call = await board.router.join(invitation.id, who.id, now, offer)
    await board.scheduler.cancel(ring_timer(invitation.id, invitation.offers))
    batch = board.batch()
    batch.event(ev.PARTICIPANT_JOINED, call, who.principal, participant_id=who.principal,
                role=SPECIALIST, principal_id=who.id, name=who.name,
                invitation_id=invitation.id)
    board.set_status(batch, who.id, AgentState.IN_CALL, "joined")
    participants = await board.participants(call)
    recording = any(p.role == "recorder" for p in participants)
    newcomer = m.Participant(id=who.principal, role=SPECIALIST, name=who.name)
    for member in participants:
        if member.id == who.principal:
            batch.send(member.id, m.CallConnected(
                call_id=call.id, session_id=call.session_id, you=who.principal,
                participants=participants, recording=recording))
        else:
            batch.send(member.id, m.ParticipantJoined(call_id=call.id, participant=newcomer))
    await _tell_members(board, batch, call, invitation, "accepted", skip=who.principal)
    await batch.commit()
    board.watch.changed(invitation.queue)
    if invitation.transfer_from is not None:
        await leave(board, call, invitation.transfer_from, "transferred")


async def leave(board: Switchboard, call: Call, agent_id: str, reason: str) -> None:
    """One specialist leaves; the session goes on while the terminal and one specialist remain."""
    left = await board.router.leave(call.id, agent_id, board.clock())
    if left is None:
        raise Refused("not_in_call", f"{agent_id} cannot leave call {call.id}")
    leaver = principal_of(SPECIALIST, agent_id)
    batch = board.batch()
    batch.event(ev.PARTICIPANT_LEFT, left, leaver, participant_id=leaver, reason=reason)
    board.set_status(batch, agent_id, AgentState.WRAP_UP, reason)
    batch.send(leaver, m.CallEnded(call_id=call.id, session_id=call.session_id, reason=reason,
                                   by=leaver))
    for member in await board.participants(left):
        batch.send(member.id, m.ParticipantLeft(call_id=call.id, participant=leaver,
                                                reason=reason))
    await board.scheduler.schedule(f"wrapup:{agent_id}", board.queues[call.queue].wrapup_s,
                                   "wrapup", {"agent_id": agent_id})
    await batch.commit()


async def cancel(board: Switchboard, invitation_id: str, reason: str) -> None:
    """Take an invitation back (declined, unanswered, or the call ended)."""
    invitation = await board.router.remove(invitation_id, board.clock())
    if invitation is None:
        return
    await board.scheduler.cancel(ring_timer(invitation_id, invitation.offers))
    call = await board.router.get_call(invitation.joins or "")
    batch = board.batch()
    if invitation.ringing_agent is not None:
        agent = principal_of(SPECIALIST, invitation.ringing_agent)
        batch.send(agent, m.CallWithdrawn(call_id=invitation_id, offer=invitation.offers,
                                          reason=reason))
        board.set_status(batch, invitation.ringing_agent, AgentState.AVAILABLE, reason)
    batch.events.append(ev.LogEvent(type=ev.INVITE_CANCELLED, ts=board.utcnow(),
                                    session_id=invitation.session_id, call_id=invitation.joins,
                                    data={"invitation_id": invitation_id, "reason": reason}))
    if call is not None:
        await _tell_members(board, batch, call, invitation, reason)
    await batch.commit()
    await board.dispatch()
    board.watch.changed(invitation.queue)


async def after_refusal(board: Switchboard, invitation: Call, reason: str) -> None:
    """A named specialist declined or let it ring out: nobody else may take it."""
    if invitation.target_agent is not None:
        await cancel(board, invitation.id, reason)


async def _tell_members(board: Switchboard, batch: Batch, call: Call, invitation: Call,
                        state: str, skip: str | None = None) -> None:
    status = m.InvitationStatus(call_id=call.id, invitation_id=invitation.id, state=state,
                                queue=invitation.queue, specialist=invitation.target_agent,
                                transfer=invitation.transfer_from is not None)
    for member in await board.participants(call):
        if member.role != "recorder" and member.id != skip:
            batch.send(member.id, status)
