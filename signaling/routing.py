"""What both routers apply outside their transactions: the same Python for memory and Redis.

The transactions themselves are `acd.CallCenter` (memory) and the Lua scripts of
`server/cluster` (Redis); these are the rules around them that read no shared state
beyond what the caller passes in, so neither router has its own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .errors import Refused
from .model import AgentState, Call, CallState, QueueConfig, QueueSnapshot


def known_queue(queues: Mapping[str, QueueConfig], queue: str) -> QueueConfig:
    try:
        return queues[queue]
    except KeyError:
        raise Refused("unknown_queue", f"no queue {queue!r}") from None


def open_refusal(config: QueueConfig, staffed: Callable[[], bool]) -> str | None:
    """Why a new call to the queue would be rejected (`staffed`: anyone logged in with
    the skill), or None if it may wait."""
    if not config.open:
        return "closed"
    return None if staffed() else "no_specialist"


def queue_snapshot(queue: str, waiting: int, longest_wait_s: float, available: int,
                   counts: Mapping[AgentState, int], avg_handle_s: float | None
                   ) -> QueueSnapshot:
    """A queue's figures from its specialists' `counts` by state (every state present)."""
    return QueueSnapshot(
        id=queue, waiting=waiting, longest_wait_s=longest_wait_s, available=available,
        busy=counts[AgentState.RINGING] + counts[AgentState.IN_CALL]
        + counts[AgentState.WRAP_UP],
        away=counts[AgentState.AWAY] + counts[AgentState.AVAILABLE] - available,
        logged_in=sum(counts.values()), avg_handle_s=avg_handle_s)


def handoff_refusal(call: Call | None, call_id: str, terminal_id: str) -> Refused | None:
    """Why the terminal's call cannot go over to a phone now (the Lua `HAND_OFF` refuses
    the same): only a waiting call of that terminal, not handed off yet."""
    if call is None or call.terminal_id != terminal_id or call.is_invitation:
        return Refused("not_in_call", f"call {call_id} is not yours")
    if call.visitor is not None:
        return Refused("handed_off", f"call {call_id} was handed off already")
    if call.state not in (CallState.QUEUED, CallState.RINGING):
        return Refused("not_waiting", f"call {call_id} is not waiting")
    return None


def in_progress_refusal(call: Call, live: list[Call]) -> Refused | None:
    """Why the terminal may not have this call queued: one live call per terminal (the Lua
    `ENQUEUE` refuses the same, in the same transaction as the enqueue, so a request sent
    again racing the first on another node cannot make a second call). Invitations and
    calls handed off to a phone do not count (the terminal is free for its next visitor)."""
    if call.is_invitation:
        return None
    for other in live:
        if other.id != call.id and not other.is_invitation and other.visitor is None:
            return Refused("call_in_progress", f"call {other.id} is still {other.state.value}")
    return None
