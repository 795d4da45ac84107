"""`call.request`: a terminal asks for a consultation in a queue."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import secrets
import uuid
from collections.abc import Awaitable

from . import events as ev
from . import messages as m
from . import offers, recording, timers
from .acd import APPOINTMENT_PRIORITY
from .appointments import Booking
from .commit import commit
from .errors import Refused
from .identity import Identity, encode_identity
from .model import Call, CallState, QueueSnapshot
from .outbox import Outbox
from .parties import calls_of_caller
from .queue_status import wait_at
from .resume import caller_again
from .retry import REPORT_RETRY_S, retrying
from .services import Services
from .together import raised, together
from .uscc import uscc_error


async def call_request(s: Services, who: Identity, msg: m.CallRequest) -> Outbox:
    """Logged, then queued: another node may offer the call as soon as it is queued, and
    its `offered` must find the session. The rest (`call.queued`, dispatch) follows. A node
    alone (`ClusterLink.alone`) queues first and offers at once: `queued` and the offer are
    then one append (one commit less on the way to the specialist), and a failed append
    takes the call back out (`Outbox.undo`): nobody heard of it.

    An appointment within its window is let in outside the opening hours (its slot was
    within them) and waits ahead of walk-ins."""
    enterprise = _enterprise(msg.enterprise)
    found = await together(s, calls_of_caller(s, who), _booking(s, msg),
                         s.router.check_open(msg.queue), recording.refusal(s))
    for call in raised(found[0]):  # not one handed off to a phone
        return await _made_already(s, who, msg, call)
    booking = raised(found[1])
    if booking is not None and enterprise is None:  # given when booking: the offer shows it
        enterprise = {"name": booking.enterprise_name, "uscc": booking.enterprise_uscc}
    opens_at = None if booking is not None else s.status.hours_of(msg.queue, s.clock())[1]
    reason = ("closed" if opens_at is not None else None) or \
        raised(found[2]) or raised(found[3])
    config = s.queues[msg.queue]
    context: dict[str, object] = {"terminal": encode_identity(who), "enterprise": enterprise}
    if msg.request_id is not None:
        context["request_id"] = msg.request_id
    if booking is not None:
        context["appointment"] = booking.id
        context["slot_start"] = booking.start.timestamp()
    call = Call(
        id="c_" + secrets.token_hex(8),
        session_id=str(uuid.uuid4()),
        queue=msg.queue,
        terminal_id=who.id,
        enqueued_at=s.clock(),
        priority=config.priority if booking is None else APPOINTMENT_PRIORITY,
        context=context,
    )
    queued = s.outbox()
    site = who.site
    queued.event(ev.Queued(queue=msg.queue, terminal_id=who.id, terminal_name=who.name,
                           site_id=site.id if site else None,
                           site_name=site.name if site else None,
                           enterprise=ev.EnterpriseData(**enterprise) if enterprise else None,
                           node_id=s.node_id), call, who.principal)
    if reason is not None:
        queued.event(ev.Rejected(reason=reason), call)
        queued.send(who.principal, m.CallRejected(queue=msg.queue, reason=reason,
                                                  opens_at=opens_at or None))
        return queued
    if booking is not None and s.appointments is not None:
        await s.appointments.arrived(booking, call.session_id, s.utcnow())
    out = queued
    if not s.link.alone:
        await commit(s, queued)
        out = s.outbox()
    placed = await _placed(s, who, msg, call, out)
    if isinstance(placed, Outbox):  # another request of the kiosk won: its call told
        return placed
    position, estimate = placed
    s.status.sent_position(call.queue, call.id, position)
    out.send(who.principal, m.CallQueued(call_id=call.id, queue=call.queue, position=position,
                                         estimated_wait_s=estimate))
    if config.overflow_after_s is not None and config.overflow_to:
        out.set_timer(timers.overflow(call.id, config.overflow_after_s))
    out.changed(call.queue)
    if not s.link.alone:
        out.dispatch = True
        return out
    out.undo.append(functools.partial(_unqueue, s, call.id))
    out.merge(await offers.dispatch(s))
    return out


async def _placed(s: Services, who: Identity, msg: m.CallRequest, call: Call, out: Outbox
                  ) -> tuple[int, float] | Outbox:
    """The call queued: its position and estimated wait. Refused by the router, this
    request's session is closed `rejected` with the refusal's code: `call_in_progress`
    (another request of the terminal, on another node perhaps, queued its call since this
    one's read: the winner is told as a request sent again would be, `_made_already`), or
    `fenced` (this node was taken for dead after its `queued` was logged: nobody else
    knows of the session to settle it)."""
    try:  # once queued, the kiosk must hear of it: its wait's read is tried again too
        position, estimate = await _queue(s, call, who)
    except Refused as exc:
        out.event(ev.Rejected(reason=exc.code), call)  # logged `queued` (on a cluster): the
        await commit(s, out)  # session is closed, whatever refused it (`fenced`: the others
        if exc.code != "call_in_progress":  # took this node for dead as it logged it)
            raise
        for other in await calls_of_caller(s, who):  # another request of the terminal won
            return await _made_already(s, who, msg, other)  # the race (on another node,
        raise  # perhaps): the kiosk is told of that one
    except Exception:
        with contextlib.suppress(Exception):  # in routing after all: out again
            await s.router.remove(call.id, s.clock())
        out.event(ev.Rejected(reason="internal"), call)
        await commit(s, out)
        raise
    return position, estimate


async def _made_already(s: Services, who: Identity, msg: m.CallRequest, call: Call
                        ) -> Outbox:
    """The terminal has a live call: the one this request made (sent again with the same
    `request_id` after its reply was lost with the socket) is told again, as on resume;
    any other is a refusal."""
    if msg.request_id is None or call.context.get("request_id") != msg.request_id:
        raise Refused("call_in_progress", f"call {call.id} is still {call.state.value}")
    out = s.outbox()
    await s.bus.resync(who.principal)  # read again after it: heard before what follows
    fresh = await s.router.get_call(call.id)
    if fresh is not None and fresh.state != CallState.ENDED:  # else its end is told
        await caller_again(s, out, who, fresh, resumed=True, reconnected=False)
    return out


async def _queue(s: Services, call: Call, who: Identity) -> tuple[int, float]:
    """The call queued: its position and estimated wait. On a cluster the queue's figures
    are read beside the enqueue, not after it (the estimate needs the position and the
    specialists, and queueing changes no specialist); the enqueue stays in this task, the
    numbers it takes (`order`) being this step's. A node alone reads them after it, with
    nothing that suspends between its enqueue and its dispatch: another step's dispatch
    would offer a call whose `queued` is not logged yet."""
    def snapshot() -> Awaitable[QueueSnapshot]:
        return retrying(REPORT_RETRY_S, f"estimating the wait of {call.id}",
                        lambda: s.router.snapshot(call.queue, s.clock()))

    reading = None if s.link.alone else asyncio.ensure_future(snapshot())
    try:
        position = await retrying(REPORT_RETRY_S, f"queueing {call.id} for {who.principal}",
                                  lambda: _enqueue(s, call))
    except BaseException:
        if reading is not None:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
        raise
    return position, wait_at(await (reading or snapshot()), position)


async def _enqueue(s: Services, call: Call) -> int:
    """The call queued; its position. Tried again while the backend fails: a reply lost
    after the script ran (a Redis restart, issue 16's faulted day) left the call queued
    while the kiosk was told `internal`, and every later request of the kiosk was refused
    `call_in_progress` for a call it never heard of. Its id is this request's own, so an
    attempt that finds it there (`duplicate_call`) finds the earlier attempt's work."""
    try:
        return await s.router.enqueue(call)
    except Refused as exc:
        if exc.code != "duplicate_call":
            raise
        return await s.router.position(call.id) or 1


async def _unqueue(s: Services, call_id: str) -> None:
    """The call's `queued` was not logged: out of the router (its specialist, if it rang,
    is free again; its ring timer then finds it gone)."""
    await s.router.remove(call_id, s.clock())
    s.status.forget(call_id)


async def _booking(s: Services, msg: m.CallRequest) -> Booking | None:
    if msg.appointment is None:
        return None
    if s.appointments is None:
        raise Refused("appointment_unknown", "this service takes no appointments")
    return await s.appointments.arriving(msg.queue, msg.appointment, s.utcnow())


def _enterprise(value: m.Enterprise | None) -> dict[str, str] | None:
    if value is None or not (value.name or value.uscc):
        return None
    if value.uscc:
        problem = uscc_error(value.uscc)
        if problem is not None:
            raise Refused("invalid_uscc", problem)
    return {k: v for k, v in (("name", value.name), ("uscc", value.uscc)) if v}
