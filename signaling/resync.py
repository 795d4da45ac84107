"""Re-syncing a client that (re)connected: tell it where it stands."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import messages as m
from .identity import Identity
from .model import AgentState, CallState

if TYPE_CHECKING:
    from .switchboard import Switchboard


async def resync(board: Switchboard, who: Identity, resumed: bool) -> None:
    """After `welcome`: the caller's queue place or call, the specialist's status and offer."""
    if who.role == "recorder":  # told its sessions by `record.start` (signaling.recording)
        return
    if who.role == "terminal":
        for call in await board.router.calls_of_terminal(who.id):
            if call.is_invitation:
                continue
            if call.state == CallState.CONNECTED:
                await _connected_again(board, who, call.id)
                continue
            position = await board.router.position(call.id) or 1
            estimate = await board.watch.estimate(call.queue, position)
            board.watch.sent_position(call.id, position)
            await board.bus.send(
                who.principal,
                m.encode(
                    m.CallQueued(
                        call_id=call.id,
                        queue=call.queue,
                        position=position,
                        estimated_wait_s=estimate,
                        resumed=resumed,
                    )
                ),
            )
        return
    agent = await board.router.get_agent(who.id)
    if agent is None:
        return
    await board.bus.send(
        who.principal,
        m.encode(
            m.AgentStatusChanged(
                status=agent.state.value, reason="resumed" if resumed else "connected"
            )
        ),
    )
    if agent.call_id is None:
        return
    offered = await board.router.get_call(agent.call_id)
    if offered is None:
        return
    call = offered
    if agent.state == AgentState.RINGING and call.ringing_agent == who.id:
        offered_again = board._offered_message(call, call.offers, call.queue not in agent.skills)
        await board.bus.send(who.principal, m.encode(offered_again))
    elif agent.state == AgentState.IN_CALL:
        await _connected_again(board, who, call.id)


async def _connected_again(board: Switchboard, who: Identity, call_id: str) -> None:
    call = await board.router.get_call(call_id)
    if call is None:
        return
    participants = await board._participants(call)
    await board.bus.send(
        who.principal,
        m.encode(
            m.CallConnected(
                call_id=call.id,
                session_id=call.session_id,
                you=who.principal,
                participants=participants,
                resumed=True,
                recording=any(p.role == "recorder" for p in participants),
            )
        ),
    )
    for member in participants:
        if member.id != who.principal:
            await board.bus.send(
                member.id,
                m.encode(m.ParticipantReconnected(call_id=call.id, participant=who.principal)),
            )
