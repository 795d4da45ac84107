"""Carrying out an outbox, in the one order the design promises.

1. timers that must outlive a crash of this node (ring timers: an offer whose
   node dies before sending it is still withdrawn), tried again while the scheduler
   fails (the step's transaction has run: its events must still be logged);
2. the log events, in one append: durable before anyone hears of them (if it fails,
   the routing changes the step made before it are taken back: `Outbox.undo`);
3. the messages, in the order the step added them (a state read before, `still`,
   only if it still holds: `Outbox.send`); those a routing transaction
   numbered (several nodes: `order.py`) grouped per principal and number, and the
   numbers no message carried sent empty, so that the receiving connection puts
   them in the cluster's order and never waits for a number nobody will send; an
   unnumbered event (a participant replaced, a recording notice) is heard after the
   numbers its principal had when it was sent and what is held for the connection
   (`MessageBus.send_numbered` with neither number); replies and chat go straight;
4. timers cancelled, then set (ring timers again: the ring time counts from the
   offer sent);
5. dispatch, if the step freed a specialist or queued a call (its own outbox,
   committed the same way);
6. the changed queues' live figures (sent a moment later, coalesced).
"""

from __future__ import annotations

import typing

from . import messages as m
from . import offers, order
from .outbox import Outbox, Still
from .retry import REPORT_RETRY_S, retrying
from .services import Services
from .timers import Timer

# Replies to the connection's own request, notices about the connection or the queues, and
# chat lines: no routing decision precedes them that they could overtake, so they are never
# held behind a gap (every other unnumbered message is an event and keeps its place:
# `_unnumbered`). Derived from the kind each server frame declares (`m.FrameKind`), so a
# new reply goes straight without being listed here.
STRAIGHT_KINDS = frozenset({m.FrameKind.REPLY, m.FrameKind.NOTICE, m.FrameKind.CHAT})


def straight_frames(frames: typing.Any) -> frozenset[type[m.Message]]:
    """The frames of a union that go straight; TypeError if one declares no kind."""
    return frozenset(frame for frame in typing.get_args(frames)
                     if m.frame_kind_of(frame) in STRAIGHT_KINDS)


STRAIGHT = straight_frames(m.Outbound)


async def commit(s: Services, out: Outbox) -> None:
    taken = order.take_all()
    if out.events or out.durable_timers:
        if out.durable_timers:
            await _schedule(s, out.durable_timers)
        if out.events:
            await _log(s, out)
    await _send(s, out, taken)
    if out.cancels or out.timers:
        await s.scheduler.change(out.cancels, out.timers)
    if out.dispatch:
        offered = await offers.dispatch(s)
        if offered.events or order.pending():
            await commit(s, offered)
    if out.all_queues:
        s.status.changed_all()
    elif out.queues:
        s.status.changed(out.queues)


async def _schedule(s: Services, timers: list[Timer]) -> None:
    """The timers set before the log (at once), tried again while the scheduler fails
    (Redis restarting, issue 16's faulted day): the step's transaction has run, so a
    failure here would leave its events unlogged for ever (a hang-up ended in the router,
    `connected` in the log). Setting a key again replaces it: safe to repeat."""
    await retrying(REPORT_RETRY_S, f"setting timers {', '.join(t.key for t in timers)}",
                   lambda: s.scheduler.change((), timers))


async def _log(s: Services, out: Outbox) -> None:
    """The events in one append; if it fails, the routing changes made before it are
    taken back (`Outbox.undo`): nobody heard of them; once in, `Outbox.logged` runs."""
    try:
        await s.session_log.append(out.events)
    except Exception:
        for undo in out.undo:
            await undo()
        raise
    for logged in out.logged:
        logged()


async def fill(s: Services) -> None:
    """A step failed after a transaction took numbers: send them empty, so that nobody
    waits for them (a Redis error here leaves the gap to the receiver's hold)."""
    if order.pending():
        try:
            await commit(s, s.outbox())
        except Exception:
            order.take_all()


async def _send(s: Services, out: Outbox, taken: order.Taken) -> None:
    """Each (principal, number) as one numbered unit, in the order first added; the
    unnumbered messages as they come; then the numbers taken but not carried, empty."""
    if not taken and not out.numbered and not out.still:  # one node, or nothing decided
        for principal, message in out.sends:
            await _unnumbered(s, principal, message, m.encode(message))
        return
    units: dict[tuple[str, int], list[bytes]] = {}
    plan: list[tuple[str, int | None, m.Message, Still | None]] = []
    for i, (principal, message) in enumerate(out.sends):
        number = out.numbered.get(i)
        if number is None:
            plan.append((principal, None, message, out.still.get(i)))
        elif (principal, number) in units:
            units[(principal, number)].append(m.encode(message))
        else:
            units[(principal, number)] = [m.encode(message)]
            plan.append((principal, number, message, None))
    for principal, number, message, still in plan:
        if number is not None:
            await s.bus.send_numbered(principal, units[(principal, number)], seq=number)
        elif still is None or await still():  # asked right before it goes (one node: in
            await _unnumbered(s, principal, message, m.encode(message))  # the same turn)
    for principal, numbers in taken.items():
        for number in numbers:
            if (principal, number) not in units:
                await s.bus.send_numbered(principal, [], seq=number)


async def _unnumbered(s: Services, principal: str, message: m.Message, payload: bytes) -> None:
    """A reply or chat line now; an event behind what the connection is waiting on."""
    if type(message) in STRAIGHT:
        await s.bus.send(principal, payload)
    else:
        await s.bus.send_numbered(principal, [payload])
