"""What both routers apply outside their transactions: the same Python for memory and Redis.

The transactions themselves are `acd.CallCenter` (memory) and the Lua scripts of
`server/cluster` (Redis); these are the rules around them that read no shared state
beyond what the caller passes in, so neither router has its own copy.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping

from .errors import Refused
from .model import AgentState, Call, CallState, QueueConfig, QueueSnapshot

REQUEST_KEPT_S = 600.0
"""A kiosk's `request_id` is remembered this long after the call it made was queued: a copy
of the request that comes later still (sent again after a lost socket, read by a node long
behind) makes no second call after the first has ended (`request_done`). Without it a
copy read 26 s late on a loaded bench day queued a call nobody was waiting at the kiosk
for, and a specialist answered it."""


def request_key(call: Call) -> str | None:
    """The kiosk's key for the request that made `call` (`call.request`'s `request_id`);
    None for an invitation into it, which carries its context (the key made the call, not
    the invitation)."""
    if call.is_invitation:
        return None
    key = call.context.get("request_id")
    return key if isinstance(key, str) and key else None


def request_done(request_id: str, call_id: str) -> Refused:
    return Refused("request_done", f"request {request_id} made call {call_id} already")


class RequestKeys:
    """The memory router's keys of recent requests (the Lua `ENQUEUE` keeps the same in
    Redis, `rq:<terminal>:<key>`): which call each made, until `REQUEST_KEPT_S` after."""

    def __init__(self) -> None:
        self._made: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()

    def claim(self, call: Call) -> None:
        """Note the call's key; `request_done` if it made another call already."""
        key = request_key(call)
        if key is None:
            return
        now = call.enqueued_at
        while self._made and next(iter(self._made.values()))[1] <= now:
            self._made.popitem(last=False)  # in the order queued: the oldest expire first
        made = self._made.get((call.terminal_id, key))
        if made is not None and made[0] != call.id:
            raise request_done(key, made[0])
        self._made[(call.terminal_id, key)] = (call.id, now + REQUEST_KEPT_S)


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
