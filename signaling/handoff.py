"""Leave the kiosk, keep your place: `call.handoff`, and a phone opening its ticket.

A terminal's waiting call goes over to a phone: the terminal asks (`call.handoff`) and
shows the answer's URL as a QR code; the phone opens `/m/<ticket>` and says `hello` with
the ticket. The first such hello takes the call over (the router's `hand_off`: the call
keeps its place, its caller is now `visitor:<id>`, the terminal is free); any later one
must bring that phone's resume token. Tickets are kept through the small
`HandoffTickets` protocol (the database every node shares), so this module does no I/O.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from . import events as ev
from . import messages as m
from . import timers
from .backend import HandoffTickets, Ticket
from .endings import own_call
from .errors import Refused
from .identity import Identity, Role, encode_identity, principal_of, terminal_of, visitor_of
from .model import Call, CallState
from .outbox import Outbox
from .routing import handoff_refusal
from .services import Services

TICKET_PREFIX = "vwm_"  # a `hello` token that is a hand-off ticket
TICKET_TTL_S = 600.0  # a ticket not opened within 10 minutes is void (the figure)
PHONE_GRACE = 2.0  # resume graces a phone that took its call over has to say hello fully
PAGE_PATH = "/m/"  # the phone's page: PAGE_PATH + ticket

log = logging.getLogger(__name__)

Step = Callable[[Services, Identity, Any], Awaitable[Outbox]]


def ticket_hash(ticket: str) -> str:
    """Tickets are 192-bit random values: a fast hash is enough to store them."""
    return hashlib.sha256(ticket.encode()).hexdigest()


def _tickets(s: Services) -> HandoffTickets:
    if s.handoffs is None:
        raise Refused("forbidden", "phone hand-off is not available on this server")
    return s.handoffs


async def call_handoff(s: Services, who: Identity, msg: m.CallHandoff) -> Outbox:
    """`call.handoff`: a ticket for a phone to take this waiting call over."""
    tickets = _tickets(s)
    call = await own_call(s, who, msg.call_id)
    refusal = handoff_refusal(call, call.id, who.id)
    if refusal is not None:
        raise refusal
    ticket = TICKET_PREFIX + secrets.token_urlsafe(24)
    expires = s.utcnow() + dt.timedelta(seconds=TICKET_TTL_S)
    await tickets.add_handoff_ticket(ticket_hash(ticket), Ticket(
        call_id=call.id, terminal_id=who.id, visitor_id="v_" + secrets.token_hex(8),
        expires_at=expires))
    out = s.outbox()
    out.send(who.principal, m.CallHandoffReady(call_id=call.id, url=PAGE_PATH + ticket,
                                               expires_at=expires.isoformat()))
    return out


async def open_ticket(s: Services, ticket: str, resume: str | None
                      ) -> tuple[Identity, Outbox]:
    """A phone's `hello` with a ticket: its identity, and (the first time) the outbox that
    takes the call over. Refused: `unauthorized` (unknown ticket), `ticket_used` (opened
    before by a phone that attached, and this is not that phone resuming), `ticket_answered`
    (a specialist answered the call at the kiosk first), `ticket_expired` (too late, or the
    call is over)."""
    tickets = _tickets(s)
    hashed = ticket_hash(ticket)
    stored = await tickets.handoff_ticket(hashed)
    if stored is None:
        raise Refused("unauthorized", "unknown hand-off ticket")
    out = s.outbox()
    if stored.used:
        call = await s.router.get_call(stored.call_id)
        presence = await s.presences.get(principal_of(Role.VISITOR, stored.visitor_id))
        if call is None or call.visitor != stored.visitor_id:
            raise Refused("ticket_used", "this hand-off ticket was used already")
        # Taken over, and no phone was sent its `welcome` (the hand-off was logged, then
        # its hello failed before `connect`, at a Redis restart; or its node was killed
        # between `connect` and the welcome: CI's short day, `c_9a81c3dd48e7a7f3`): the
        # ticket lets a phone in as for the first open, else that phone, with no resume
        # token yet, is locked out while the call waits for it until its grace ends it.
        if presence is not None and stored.welcomed and (
                resume is None or presence.resume != resume):
            raise Refused("ticket_used", "this hand-off ticket was used already")
        return visitor_of(terminal_of(call), stored.visitor_id, call.id), out
    call = await _call_to_take(s, stored)
    if call is None:
        raise await _too_late(s, stored)
    if not await tickets.use_handoff_ticket(hashed):
        raise Refused("ticket_used", "this hand-off ticket was used already")
    try:
        taken = await s.router.hand_off(call.id, stored.terminal_id, stored.visitor_id,
                                        s.clock())
    except Refused:  # answered or cancelled since the check above
        raise await _too_late(s, stored) from None
    s.link.calls_changed([call.id])
    visitor = _handed_off(s, out, taken)
    out.send(principal_of(Role.TERMINAL, stored.terminal_id), m.CallHandedOff(call_id=taken.id))
    return visitor, out


def _handed_off(s: Services, out: Outbox, call: Call, at: dt.datetime | None = None,
                grace: bool = True) -> Identity:
    """The call's hand-over to its phone, logged; the phone (its identity)."""
    assert call.visitor is not None
    visitor = visitor_of(terminal_of(call), call.visitor, call.id)
    out.event(ev.HandedOff(terminal_id=call.terminal_id, participant_id=visitor.principal,
                           visitor_id=visitor.id, name=visitor.name), call, visitor.principal,
              at=at)
    # The phone's presence starts with `connect`, after this is committed: a phone that
    # never gets there (its socket lost, or this commit failing after the log: a Redis
    # restart in issue 16's day) would leave the call its own, with no grace to end it. So
    # it has one from now (no presence has epoch 0); its `welcome` cancels it.
    if grace:
        out.set_timer(timers.grace(visitor.principal, encode_identity(visitor), 0,
                                   PHONE_GRACE * s.resume_grace_s), durable=True)
    return visitor


async def handoffs_again(s: Services, handed: list[tuple[str, float]]) -> Outbox:
    """The calls a dead node handed over to a phone over its last minute, each with when
    (`ClusterBackends.dead`): killed between routing and its append, it left the session
    without its `handed_off` (the goal-size day's `c_11ba988aa2607045`: the phone was
    answered, and the log never said it took the call over). Those still handed over in
    routing whose log lacks it get it, at the hand-over's time, and their phone a grace if
    it never attached; one read of the log finds them."""
    out = s.outbox()
    calls = [c for c in [await s.router.get_call(call_id) for call_id, _ in handed]
             if c is not None and c.visitor is not None and not c.is_invitation]
    if not calls:  # nearly always: no read of the log
        return out
    logged = await s.session_log.sessions_with(ev.HANDED_OFF, [c.session_id for c in calls])
    when = dict(handed)
    for call in calls:
        if call.session_id in logged:
            continue
        phone = await s.presences.get(principal_of(Role.VISITOR, call.visitor or ""))
        log.warning("call %s: its hand-over to a phone was lost with a node; logged now",
                    call.id)
        _handed_off(s, out, call, dt.datetime.fromtimestamp(when[call.id], dt.UTC),
                    grace=phone is None)
    return out


async def resume_unwelcomed(s: Services, who: Identity, ticket: str) -> str | None:
    """The resume token a phone let in again by a ticket not yet welcomed connects with:
    its first hello's presence, if that got so far (a fresh presence would replace it,
    and a replaced phone's call is let go)."""
    stored = await _tickets(s).handoff_ticket(ticket_hash(ticket))
    if stored is None or stored.welcomed:
        return None
    presence = await s.presences.get(who.principal)
    return presence.resume if presence is not None else None


async def welcomed(s: Services, ticket: str) -> None:
    """The phone that opened the ticket was sent its `welcome` (`open_ticket`'s rule)."""
    await _tickets(s).welcome_handoff_ticket(ticket_hash(ticket))


async def phone_of(s: Services, visitor_id: str) -> Identity:
    """The phone `visitor:<visitor_id>` as its own connection named it (its call, its
    kiosk's name and site), for a node that settles it without that connection (a dead
    node's phone, `ClusterBackends.dead`): without its call, its grace's end would let go
    of nothing, and the call it took over would wait for it for ever."""
    call_id = await _tickets(s).visitor_call(visitor_id)
    call = await s.router.get_call(call_id) if call_id else None
    if call is None or call.visitor != visitor_id:
        return Identity(role=Role.VISITOR, id=visitor_id, name=visitor_id, call_id=call_id)
    return visitor_of(terminal_of(call), visitor_id, call.id)


async def ticket_opens(s: Services, ticket: str) -> bool:
    """Whether a phone opening this ticket now would take its call over."""
    stored = await _tickets(s).handoff_ticket(ticket_hash(ticket))
    return stored is not None and await _call_to_take(s, stored) is not None


async def _call_to_take(s: Services, stored: Ticket) -> Call | None:
    """The ticket's call if it may still go over to a phone: unused and in time, the call
    waiting and still its terminal's."""
    if stored.used or stored.expires_at <= s.utcnow():
        return None
    call = await s.router.get_call(stored.call_id)
    if call is None or handoff_refusal(call, call.id, stored.terminal_id) is not None:
        return None
    return call


async def _too_late(s: Services, stored: Ticket) -> Refused:
    """Why a phone may not take the ticket's call: `ticket_answered` when a specialist
    answered it at the kiosk (the visitor goes back there; `bench.node_memory`'s phone was
    told its call was over), else `ticket_expired`."""
    call = await s.router.get_call(stored.call_id)
    if call is not None and call.state == CallState.CONNECTED \
            and call.terminal_id == stored.terminal_id and call.visitor is None:
        return Refused("ticket_answered", "the call was answered at the kiosk")
    return Refused("ticket_expired", "this hand-off ticket expired or its call is over")


def only_its_call(step: Step) -> Step:
    """A visitor's step: refused for any call but the visitor's one (the step's own
    membership check then applies as for everyone)."""

    async def guarded(s: Services, who: Identity, msg: Any) -> Outbox:
        call_id = getattr(msg, "call_id", None)
        if call_id is not None and call_id != who.call_id:
            raise Refused("not_in_call", f"call {call_id} is not yours")
        return await step(s, who, msg)

    return guarded
