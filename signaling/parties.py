"""Who takes part in a call, as `call.connected` lists them."""

from __future__ import annotations

from collections.abc import Mapping

from . import messages as m
from .identity import Role, principal_of, terminal_of
from .model import Call
from .services import Services


async def people(s: Services, call: Call, names: Mapping[str, str] | None = None
                 ) -> list[m.Participant]:
    """The call's terminal and specialists (not its recorder); `names` are specialists'
    names the caller knows already (no router read for them)."""
    terminal = terminal_of(call)
    listed = [m.Participant(id=terminal.principal, role="terminal", name=terminal.name)]
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
        name = await s.recording.pool.recorder_of(call.id)
        if name is not None:
            listed.append(recorder(name))
    return listed


def recorder(name: str) -> m.Participant:
    return m.Participant(id=principal_of(Role.RECORDER, name), role="recorder", name=name)
