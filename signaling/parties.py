"""Who takes part in a call, as `call.connected` lists them."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from . import messages as m
from .identity import Identity, Role, caller_of, principal_of
from .model import Call, CallState
from .services import Services

# A call connected in the router but not in the log is waited for this long (in all about
# 12 s) for its answer's append: its node's, or the survivor's once the node died (a dead
# node is taken over within about 4 s: docs/cluster.md).
ANSWER_WAIT_S: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0)


async def calls_of_caller(s: Services, who: Identity) -> list[Call]:
    """The calls a terminal or visitor is the caller of: not invitations (taken back when
    the call they join ends), not a terminal's calls handed off to a phone."""
    if who.role == Role.VISITOR:
        call = await s.router.get_call(who.call_id) if who.call_id else None
        return [call] if call is not None and call.visitor == who.id else []
    return own_calls(await s.router.calls_of_terminal(who.id))


def own_calls(calls: list[Call]) -> list[Call]:
    """Of a terminal's calls, those it is the caller of (`calls_of_caller`)."""
    return [c for c in calls if not c.is_invitation and c.visitor is None]


async def answer_logged(s: Services, call: Call) -> bool:
    """Whether the session log has the call answered by one of its specialists (a node
    killed between the router's accept and its append leaves it connected, unlogged)."""
    members = await s.session_log.session_members(call.session_id) or set()
    return any(principal_of(Role.SPECIALIST, agent) in members for agent in call.agents)


async def settled_answer(s: Services, call: Call) -> tuple[Call | None, bool]:
    """The call once the log has its answer (read again; None when gone), and whether it
    has: a call the router connected whose `answered` is not logged yet is waited for
    (`ANSWER_WAIT_S`) while its node appends it, or, killed before that, until the
    survivor that takes the node over logs it (`offers.answer_again`). Nobody is told of
    an answer (a resume, a cancel crossing it) before it is logged."""
    if call.state != CallState.CONNECTED or await answer_logged(s, call):
        return call, True
    for delay in ANSWER_WAIT_S:
        await asyncio.sleep(delay)
        fresh = await s.router.get_call(call.id)
        if fresh is None or fresh.state != CallState.CONNECTED or \
                await answer_logged(s, fresh):
            return fresh, True
        call = fresh
    return call, False


async def people(s: Services, call: Call, names: Mapping[str, str] | None = None
                 ) -> list[m.Participant]:
    """The call's caller (terminal, or the phone it handed off to) and specialists (not its
    recorder); `names` are specialists' names the caller knows already (no router read)."""
    caller = caller_of(call)
    listed = [m.Participant(id=caller.principal,
                            role="visitor" if caller.role == Role.VISITOR else "terminal",
                            name=caller.name)]
    for agent_id in call.agents:
        name = (names or {}).get(agent_id)
        if name is None:
            agent = await s.router.get_agent(agent_id)
            name = agent.name if agent else agent_id
        listed.append(m.Participant(id=principal_of(Role.SPECIALIST, agent_id),
                                    role="specialist", name=name))
    return listed


async def participants(s: Services, call: Call, names: Mapping[str, str] | None = None
                       ) -> list[m.Participant]:
    """Everyone in the call, its recorder (a hidden participant) last."""
    listed = await people(s, call, names)
    if s.recording is not None:
        assignment = await s.recording.pool.assignment_of(call.id)
        if assignment is not None:
            listed.append(recorder(assignment.recorder, assignment.segment))
    return listed


async def resync(s: Services, call: Call, principal: str) -> m.CallConnected:
    """A connected call told again to one of its members (`resumed`: it may have heard it
    already, and a page re-syncs rather than starts anew)."""
    listed = await participants(s, call)
    return m.CallConnected(call_id=call.id, session_id=call.session_id, you=principal,
                           participants=listed, resumed=True,
                           recording=any(p.role == "recorder" for p in listed))


def recorder(name: str, segment: int | None = None) -> m.Participant:
    return m.Participant(id=principal_of(Role.RECORDER, name), role="recorder", name=name,
                         segment=segment)
