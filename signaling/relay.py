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
from .identity import Identity, is_member, members_of
from .model import Call, CallState
from .outbox import Outbox
from .services import Services


async def relay(s: Services, who: Identity, msg: m.RtcDescription | m.RtcCandidate
                ) -> tuple[str, m.Message]:
    """The message to forward and to whom. A relay is one send and nothing else, made for
    every ICE candidate: the switchboard sends it without building an outbox.

    The node's copy of the call first, the router's to confirm a refusal."""
    sender, to = who.principal, msg.to
    call = await s.link.relay_call(msg.call_id)
    if not (_between_members(call, sender, to) or await _with_recorder(s, call, sender, to)):
        call = await s.router.get_call(msg.call_id)
        if not (_between_members(call, sender, to)
                or await _with_recorder(s, call, sender, to)):
            raise Refused("not_in_call", f"{to} is not another participant of your call")
    if isinstance(msg, m.RtcDescription):
        return to, m.RtcDescriptionRelay(call_id=msg.call_id, to=to, sender=sender,
                                         description=msg.description)
    return to, m.RtcCandidateRelay(call_id=msg.call_id, to=to, sender=sender,
                                   candidate=msg.candidate)


def _between_members(call: Call | None, sender: str, to: str) -> bool:
    return (call is not None and call.state == CallState.CONNECTED and to != sender
            and is_member(call, sender) and is_member(call, to))


async def _with_recorder(s: Services, call: Call | None, sender: str, to: str) -> bool:
    """The one other pair: a member of the call and the call's own recorder."""
    if call is None or s.recording is None:
        return False
    members = members_of(call) if call.state == CallState.CONNECTED else set()
    return await recording.relay_allowed(s, call, sender, to, members)


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
