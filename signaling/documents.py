"""Captured documents in a call: a specialist asks the terminal for a still
(`document.request`); once the still is stored (server/documents.py), every participant
hears of it (`document.added`). The image itself travels over HTTP, not the socket."""

from __future__ import annotations

from . import messages as m
from .endings import member_call
from .errors import Refused
from .identity import Identity, Role, members_of, principal_of
from .model import Call, CallState
from .outbox import Outbox
from .services import Services


async def document_request(s: Services, who: Identity, msg: m.DocumentRequest) -> Outbox:
    """Pass the request on to the call's terminal; only while the call is connected."""
    call = await member_call(s, who, msg.call_id)
    if call.state != CallState.CONNECTED:
        raise Refused("not_in_call", f"call {call.id} is not connected")
    out = s.outbox()
    out.send(principal_of(Role.TERMINAL, call.terminal_id),
             m.DocumentRequestRelay(call_id=call.id, sender=who.principal))
    return out


def document_added(s: Services, call: Call, document: m.DocumentInfo) -> Outbox:
    """Tell every participant of the call (terminal and specialists) about a stored still."""
    out = s.outbox()
    out.send_all(sorted(members_of(call)), m.DocumentAdded(call_id=call.id, document=document))
    return out
