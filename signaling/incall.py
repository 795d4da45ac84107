"""What participants of a connected call send each other: SDP and ICE (`rtc.*`), chat.

The server relays `rtc.*` only between participants of one connected call (or to and
from its recorder) and logs chat in the session timeline before delivering it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import events as ev
from . import messages as m
from .batch import Batch
from .callsteps import members_of
from .errors import Refused
from .identity import Identity
from .model import Call, CallState

if TYPE_CHECKING:
    from .switchboard import Switchboard


async def relay(board: Switchboard, who: Identity, msg: m.RtcDescription | m.RtcCandidate) -> None:
    """Relay to another participant; the node's copy of the call first, Redis to confirm."""
    if not await _may_relay(
        board, await board.router.relay_call(msg.call_id), who, msg.to
    ) and not await _may_relay(board, await board.router.get_call(msg.call_id), who, msg.to):
        raise Refused("not_in_call", f"{msg.to} is not another participant of your call")
    out: m.Message
    if isinstance(msg, m.RtcDescription):
        out = m.RtcDescriptionRelay(
            call_id=msg.call_id, to=msg.to, sender=who.principal, description=msg.description
        )
    else:
        out = m.RtcCandidateRelay(
            call_id=msg.call_id, to=msg.to, sender=who.principal, candidate=msg.candidate
        )
    await board.bus.send(msg.to, m.encode(out))


async def _may_relay(board: Switchboard, call: Call | None, who: Identity, to: str) -> bool:
    members = members_of(call) if call and call.state == CallState.CONNECTED else set()
    if who.principal in members and to in members and to != who.principal:
        return True
    return call is not None and await board.recording.relay_allowed(
        call, who.principal, to, members)


async def chat(board: Switchboard, who: Identity, msg: m.ChatSend) -> None:
    """Log the line in the session, then deliver it to every member."""
    call = await board._member_call(who, msg.call_id)
    if call.state != CallState.CONNECTED:
        raise Refused("not_in_call", f"call {call.id} is not connected")
    batch = Batch(board)
    batch.event(
        ev.CHAT,
        call,
        who.principal,
        **{"from": who.principal, "name": who.name, "text": msg.text},
    )
    ts = batch.events[-1].ts.isoformat()
    for member in members_of(call):
        batch.send(
            member,
            m.ChatMessage(
                call_id=call.id, sender=who.principal, name=who.name, text=msg.text, ts=ts
            ),
        )
    await batch.commit()
