"""A client that (re)connected is told where it stands, after `welcome`.

What it is told is a state read before it is sent, and a hang-up (or an answer, a
withdrawal) may cross it. On several nodes the re-sync carries the number it took before
its reads (`MessageBus.resync`), so whatever was decided after them is heard after it;
on one node each state goes only if it still holds when sent (`Outbox.send`'s `still`):
a console never hears a call connected again after it heard it end.
"""

from __future__ import annotations

import functools
import logging

from . import messages as m
from . import recording, timers
from .backend import NOT_LOGGED_YET
from .identity import Identity, Role, is_member, principal_of
from .model import AgentState, Call, CallState
from .offers import offered_message
from .outbox import Outbox
from .parties import calls_of_caller, own_calls, resync, settled_answer
from .services import Services

log = logging.getLogger(__name__)


async def resume(s: Services, out: Outbox, who: Identity, resumed: bool,
                 missed: str | None = None) -> None:
    """The caller's (terminal's or visitor's) queue place or call; the specialist's
    status, offer or call. A recorder is told its sessions by `record.start`
    (`signaling.recording`). `missed`: the call the client says it was in; ended, its
    end is told again (`ended_meanwhile`)."""
    live: set[str] = set()  # calls known live: `missed` among them is not read again
    if who.role == Role.TERMINAL:
        # one read of its calls for both: a survivor's reconnect storm pays every round
        # trip of every hello (bench.takeover --resume)
        calls = await s.router.calls_of_terminal(who.id)
        live = {call.id for call in calls}
        if resumed:
            _handed_off_meanwhile(out, who, calls)
        for call in own_calls(calls):
            await caller_again(s, out, who, call, resumed)
    elif who.role == Role.VISITOR:
        for call in await calls_of_caller(s, who):
            await caller_again(s, out, who, call, resumed)
    elif who.role == Role.SPECIALIST:
        await _specialist(s, out, who, resumed)
    if resumed and missed is not None and missed not in live:
        await ended_meanwhile(s, out, who, missed)


async def ended_meanwhile(s: Services, out: Outbox, who: Identity, call_id: str) -> None:
    """The client's call is over (gone from routing): its `call.ended` went to no socket
    (a hang-up while the kiosk's network was away), or was numbered before this re-sync
    and is dropped as stale; said again with the reason the log has, if the client was
    the call's terminal or took part in it. Sent twice (the first reached the client
    after all), the pages drop the second."""
    if await s.router.get_call(call_id) is not None:
        return  # live: the re-sync or what follows tells of it
    end = await s.session_log.call_end(call_id, who.principal)
    if end is None:
        return
    reason = end.reason
    if reason == NOT_LOGGED_YET:  # its end may be on its way to the log, or lost with the
        out.set_timer(timers.lost_end(call_id, LOST_END_S), durable=True)  # node that made it
        ending = await s.router.ending(call_id)  # as the step that ended it said
        reason = reason if ending is None else ending.reason
    out.send(who.principal, m.CallEnded(call_id=call_id, session_id=end.session_id,
                                        reason=reason))


async def lost_end(s: Services, call_id: str) -> Outbox:
    """`LOST_END_S` after a party named its call gone from routing with its log still
    open, or as a dead node is taken over for a call it ended (`ends_again`): if both
    still hold, the step that ended it died with its node between routing and the log
    (the short bench day's hand-off call, connected in the log for ever). The session is
    closed as routing kept its end (`Router.ending`), else `interrupted`; those who were
    in it hear the end (the dead node may have told nobody: the goal-size day's
    specialist whose `call.ended` was lost with it; pages drop an end heard twice)."""
    out = s.outbox()

    async def routed(call: str) -> bool:
        return await s.router.get_call(call) is not None

    if await routed(call_id) or not await s.session_log.close_lost(
            call_id, s.utcnow(), routed, s.router.ending):
        return out
    ending = await s.router.ending(call_id)
    if ending is None:
        log.warning("call %s: its end was lost with a node; its session is closed "
                    "interrupted", call_id)
        return out
    log.warning("call %s: its end was lost with a node; its session is closed as it "
                "ended (%s)", call_id, ending.reason)
    for member in ending.members:
        end = await s.session_log.call_end(call_id, member)
        if end is not None:
            out.send(member, m.CallEnded(call_id=call_id, session_id=end.session_id,
                                         reason=ending.reason, by=ending.by))
    return out


async def ends_again(s: Services, call_ids: list[str]) -> Outbox:
    """The calls a dead node ended in routing over its last minute
    (`ClusterBackends.dead`): those whose session the log still has open are closed as
    they ended (`lost_end`); one read finds them."""
    out = s.outbox()
    for call_id in sorted(await s.session_log.open_calls(call_ids)):
        out.merge(await lost_end(s, call_id))
    return out


def _handed_off_meanwhile(out: Outbox, who: Identity, calls: list[Call]) -> None:
    """A kiosk that was away when a phone took its call over still hears of it."""
    for call in calls:
        if call.visitor is not None and not call.is_invitation:
            out.send(who.principal, m.CallHandedOff(call_id=call.id))


async def caller_again(s: Services, out: Outbox, who: Identity, call: Call, resumed: bool,
                       reconnected: bool = True) -> None:
    """The caller's call: connected again, or its place in the queue (on resume, and to a
    request sent again for a call it made, `requests.call_request`: its connection's
    resume told the others already, `reconnected` false)."""
    if call.state == CallState.CONNECTED:
        await _connected_again(s, out, who, call.id, reconnected)
    else:
        position = await s.router.position(call.id) or 1
        estimate = await s.status.estimate(call.queue, position)
        s.status.sent_position(call.queue, call.id, position)
        out.send(who.principal, m.CallQueued(call_id=call.id, queue=call.queue,
                                             position=position, estimated_wait_s=estimate,
                                             resumed=resumed),
                 functools.partial(_still, s, call.id, who.principal, WAITING))


async def _specialist(s: Services, out: Outbox, who: Identity, resumed: bool) -> None:
    agent = await s.router.get_agent(who.id)
    if agent is None:
        return
    out.send(who.principal, m.AgentStatusChanged(
        status=agent.state.value, reason="resumed" if resumed else "connected"),
        functools.partial(_agent_still, s, who.id, agent.state))
    if agent.call_id is None:
        return
    call = await s.router.get_call(agent.call_id)
    if call is None:
        return
    if agent.state == AgentState.RINGING and call.ringing_agent == who.id:
        out.send(who.principal, offered_message(s, call, call.offer_number,
                                                call.queue not in agent.skills),
                 functools.partial(_still, s, call.id, who.principal, RINGING))
    elif agent.state == AgentState.IN_CALL:
        await _connected_again(s, out, who, call.id)


async def _connected_again(s: Services, out: Outbox, who: Identity, call_id: str,
                           reconnected: bool = True) -> None:
    found = await s.router.get_call(call_id)
    call = None if found is None else (await settled_answer(s, found))[0]
    if call is None or call.state != CallState.CONNECTED:  # its news follows
        return
    if reconnected:
        await recording.resumed(s, out, call)
    told = await resync(s, call, who.principal)
    out.send(who.principal, told, functools.partial(_still, s, call.id, who.principal, CONNECTED))
    if not reconnected:
        return
    for member in told.participants:
        if member.id != who.principal:
            out.send(member.id, m.ParticipantReconnected(call_id=call.id,
                                                         participant=who.principal))
    if s.forms is not None:
        await s.forms.told_again(out, who.principal, call)


LOST_END_S = 30.0  # far beyond a step's tries (`retry.REPORT_RETRY_S`, about 7 s)
WAITING = frozenset({CallState.QUEUED, CallState.RINGING})
RINGING = frozenset({CallState.RINGING})
CONNECTED = frozenset({CallState.CONNECTED})


async def _still(s: Services, call_id: str, principal: str, states: frozenset[CallState]
                 ) -> bool:
    """The call is still in one of `states`, the principal still in it (or rung by it)."""
    call = await s.router.get_call(call_id)
    if call is None or call.state not in states:
        return False
    rung = call.ringing_agent is not None and principal == principal_of(
        Role.SPECIALIST, call.ringing_agent)
    return rung or is_member(call, principal)


async def _agent_still(s: Services, agent_id: str, state: AgentState) -> bool:
    agent = await s.router.get_agent(agent_id)
    return agent is not None and agent.state == state
