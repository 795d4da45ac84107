"""Carrying out an outbox, in the one order the design promises.

1. timers that must outlive a crash of this node (ring timers: an offer whose
   node dies before sending it is still withdrawn);
2. the log events, in one append: durable before anyone hears of them;
3. the messages, in the order the step added them;
4. timers cancelled, then set (ring timers again: the ring time counts from the
   offer sent);
5. dispatch, if the step freed a specialist or queued a call (its own outbox,
   committed the same way);
6. the changed queues' live figures (sent a moment later, coalesced).
"""

from __future__ import annotations

from . import messages as m
from . import offers
from .outbox import Outbox
from .services import Services


async def commit(s: Services, out: Outbox) -> None:
    if out.events or out.durable_timers:
        for timer in out.durable_timers:
            await s.scheduler.schedule(timer.key, timer.delay_s, timer.kind, timer.payload)
        if out.events:
            await s.session_log.append(out.events)
    for principal, message in out.sends:
        await s.bus.send(principal, m.encode(message))
    if out.cancels or out.timers:
        for key in out.cancels:
            await s.scheduler.cancel(key)
        for timer in out.timers:
            await s.scheduler.schedule(timer.key, timer.delay_s, timer.kind, timer.payload)
    if out.dispatch:
        offered = await offers.dispatch(s)
        if offered.events:
            await commit(s, offered)
    if out.all_queues:
        s.status.changed_all()
    elif out.queues:
        s.status.changed(out.queues)
