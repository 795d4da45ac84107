"""What participants of a connected call send each other: SDP and ICE (`rtc.*`), chat.

The server relays `rtc.*` only between participants of one connected call (or to and
from its recorder) and logs chat in the session timeline before delivering it.
"""

from __future__ import annotations

from . import events as ev
from . import messages as m
from . import recording
from .endings import member_call
from .errors import Refused
from .identity import Identity, members_of
from .model import Call, CallState
from .outbox import Outbox
from .services import Services


async def relay(s: Services, who: Identity, msg: m.RtcDescription | m.RtcCandidate) -> Outbox:
    """Relay to another participant; the node's copy of the call first, the router's to
    confirm a refusal."""
    if not await _may_relay(s, await s.link.relay_call(msg.call_id), who, msg.to) and (
        not await _may_relay(s, await s.router.get_call(msg.call_id), who, msg.to)
    ):
        raise Refused("not_in_call", f"{msg.to} is not another participant of your call")
    out = s.outbox()
    if isinstance(msg, m.RtcDescription):
        out.send(msg.to, m.RtcDescriptionRelay(call_id=msg.call_id, to=msg.to,
                                               sender=who.principal,
                                               description=msg.description))
    else:
        out.send(msg.to, m.RtcCandidateRelay(call_id=msg.call_id, to=msg.to,
                                             sender=who.principal, candidate=msg.candidate))
    return out


async def _may_relay(s: Services, call: Call | None, who: Identity, to: str) -> bool:
    members = members_of(call) if call and call.state == CallState.CONNECTED else set()
    if who.principal in members and to in members and to != who.principal:
        return True
    return call is not None and await recording.relay_allowed(s, call, who.principal, to,
                                                              members)


async def chat(s: Services, who: Identity, msg: m.ChatSend) -> Outbox:
    """Log the line in the session, then deliver it to every member."""
    call = await member_call(s, who, msg.call_id)
    if call.state != CallState.CONNECTED:
        raise Refused("not_in_call", f"call {call.id} is not connected")
    out = s.outbox()
    logged = out.event(ev.Chat(sender=who.principal, name=who.name, text=msg.text), call,
                       who.principal)
    out.send_all(members_of(call), m.ChatMessage(call_id=call.id, sender=who.principal,
                                                 name=who.name, text=msg.text,
                                                 ts=logged.ts.isoformat()))
    return out
