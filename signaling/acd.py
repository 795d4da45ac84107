"""The routing core: queues, specialists and calls, with no I/O.

`CallCenter` is the automatic call distributor of one service. Every method is
one atomic transaction on its state (nothing here awaits), so the in-memory
router can call it from the event loop without locks. The Redis router keeps
the same state in Redis and runs the same transitions as Lua scripts
(`server/cluster/scripts.py`, `dispatch.py`, `invitations.py`): a second
implementation of this module, held to it by the shared tests and a state
machine that runs both side by side (docs/design.md, "Routing: two
implementations"). A change here is made there too, in the same commit.

Invariants (checked by the hypothesis state machine in tests):
- a call rings at most one specialist, and a specialist rings for at most one call;
- a specialist is in at most one call;
- every call is in exactly one place: waiting (queued or ringing) or connected,
  until it ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from sortedcontainers import SortedList

from .errors import Refused
from .estimate import HandleTimes
from .merge import merged_while
from .model import Agent, AgentState, Call, CallState, Offer, QueueConfig, QueueSnapshot
from .routing import known_queue, open_refusal, queue_snapshot
from .strategies import get_strategy

MISSED_OFFERS_BEFORE_AWAY = 2  # consecutive ring timeouts before a specialist is set away
OVERFLOW_LEVEL_PENALTY = 100  # overflow specialists come after every specialist of the queue
REQUEUE_PRIORITY = -2  # a call that lost its specialist goes ahead of every waiting call
APPOINTMENT_PRIORITY = -1  # an arrived appointment goes ahead of walk-ins (priority >= 0)

_Key = tuple[int, float, int, str]  # (priority, enqueued_at, sequence, call id)


class CallCenter:
    def __init__(self, queues: Sequence[QueueConfig]) -> None:
        self.queues = {q.id: q for q in queues}
        self.agents: dict[str, Agent] = {}
        self.calls: dict[str, Call] = {}
        self.handle_times = HandleTimes()
        self._waiting: dict[str, SortedList] = {q: SortedList() for q in self.queues}
        self._overflow: dict[str, SortedList] = {q: SortedList() for q in self.queues}
        self._keys: dict[str, _Key] = {}
        self._available: dict[str, set[str]] = {q: set() for q in self.queues}
        self._seq = itertools.count()

    # ---- specialists -------------------------------------------------------------

    def agent_join(self, agent: Agent, now: float) -> Agent:
        """Log a specialist in (away until they say available); a known one reconnects."""
        known = self.agents.get(agent.id)
        if known is not None:
            known.connected = True
            self._index(known)
            return known
        agent.skills = {q: lvl for q, lvl in agent.skills.items() if q in self.queues}
        agent.state = AgentState.AWAY
        agent.idle_since = agent.last_offered = now
        self.agents[agent.id] = agent
        return agent

    def agent_leave(self, agent_id: str) -> Agent | None:
        """Remove a specialist; the caller has ended or requeued their call first."""
        agent = self.agents.pop(agent_id, None)
        if agent is not None:
            for q in agent.skills:
                self._available[q].discard(agent_id)
        return agent

    def set_connected(self, agent_id: str, connected: bool) -> None:
        agent = self.agents.get(agent_id)
        if agent is not None:
            agent.connected = connected
            self._index(agent)

    def set_status(self, agent_id: str, status: AgentState, now: float) -> AgentState | None:
        """A specialist's own available/away toggle; returns the old state if it changed."""
        agent = self._agent(agent_id)
        if agent.state in (AgentState.RINGING, AgentState.IN_CALL):
            raise Refused("busy", f"cannot change status while {agent.state.value}")
        if agent.state == status:
            return None
        old = agent.state
        if status == AgentState.AVAILABLE:
            agent.missed_streak = 0
        self._set_state(agent, status, now)
        return old

    def wrapup_done(self, agent_id: str, now: float) -> bool:
        agent = self.agents.get(agent_id)
        if agent is None or agent.state != AgentState.WRAP_UP:
            return False
        self._set_state(agent, AgentState.AVAILABLE, now)
        return True

    # ---- calls -----------------------------------------------------------------

    def check_open(self, queue: str) -> str | None:
        """Why a new call to `queue` would be rejected, or None if it may wait."""
        return open_refusal(known_queue(self.queues, queue),
                            lambda: any(queue in a.skills for a in self.agents.values()))

    def enqueue(self, call: Call) -> int:
        known_queue(self.queues, call.queue)
        if call.id in self.calls:
            raise Refused("duplicate_call", f"call {call.id} exists")
        call.state = CallState.QUEUED
        self.calls[call.id] = call
        key = (call.priority, call.enqueued_at, next(self._seq), call.id)
        self._keys[call.id] = key
        self._waiting[call.queue].add(key)
        return self.position(call.id) or 1

    def remove(self, call_id: str, now: float) -> Call | None:
        """Take a waiting (queued or ringing) call out, e.g. cancelled; frees its specialist.

        The returned call still names the specialist it was ringing.
        """
        call = self.calls.get(call_id)
        if call is None or call.state not in (CallState.QUEUED, CallState.RINGING):
            return None
        ringing = call.ringing_agent
        if ringing is not None:
            self._release(call, now)
            call.ringing_agent = ringing
        self._unwait(call)
        call.state = CallState.ENDED
        del self.calls[call_id]
        return call

    def overflow(self, call_id: str) -> bool:
        """Also offer a long-waiting call to the specialists of the overflow queue."""
        call = self.calls.get(call_id)
        if (
            call is None
            or call.overflowed
            or call.state not in (CallState.QUEUED, CallState.RINGING)
        ):
            return False
        target = self.queues[call.queue].overflow_to
        if target is None or target not in self.queues:
            return False
        call.overflowed = True
        self._overflow[target].add(self._keys[call_id])
        return True

    def dispatch(self, now: float) -> list[Offer]:
        """Ring as many (call, specialist) pairs as the state allows: the waiting calls of
        every queue with a specialist available (its own and those overflowed to it), the
        longest waiting first by (priority, enqueue time) whichever queue it is in."""
        offers: list[Offer] = []
        lists = [(qid, keys) for qid in self.queues if self._available[qid]
                 for keys in (self._waiting[qid], self._overflow[qid])]
        calls, available = self.calls, self._available
        for key in merged_while(lists, lambda qid: bool(available[qid]),
                                lambda key: calls[key[3]].state == CallState.QUEUED):
            call = calls[key[3]]
            offer = self._ring_best(call, now) if call.state == CallState.QUEUED else None
            if offer is not None:
                offers.append(offer)
        return offers

    def accept(self, call_id: str, agent_id: str, now: float, offer: int | None = None) -> Call:
        call = self._ringing(call_id, agent_id, offer)
        agent = self.agents[agent_id]
        self._unwait(call)
        call.state = CallState.CONNECTED
        call.ringing_agent = None
        call.agents.append(agent_id)
        if call.answered_at is None:
            call.answered_at = now
        agent.missed_streak = 0
        agent.calls_answered += 1
        agent.call_id = call_id
        self._set_state(agent, AgentState.IN_CALL, now)
        return call

    def decline(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                ) -> Call:
        """The specialist says no: kept out of this call for the queue's `decline_block_s`,
        then offered it again like one who missed it (after everyone yet to be tried)."""
        call = self._ringing(call_id, agent_id, offer)
        call.blocked[agent_id] = now + self.queues[call.queue].decline_block_s
        self._release(call, now)
        return call

    def timeout(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                ) -> tuple[Call, bool] | None:
        """Ring timeout: withdraw the offer. True when the specialist is now set away."""
        call = self.calls.get(call_id)
        if call is None or not call.rings(agent_id, offer):
            return None
        agent = self.agents[agent_id]
        call.missed_by.append(agent_id)
        agent.missed_streak += 1
        self._release(call, now)
        if agent.missed_streak >= MISSED_OFFERS_BEFORE_AWAY:
            self._set_state(agent, AgentState.AWAY, now)
            return call, True
        return call, False

    def withdraw(self, call_id: str, agent_id: str, now: float) -> Call | None:
        """Take an offer back from a specialist who vanished; the call waits again."""
        call = self.calls.get(call_id)
        if call is None or call.ringing_agent != agent_id:
            return None
        self._release(call, now)
        return call

    def hangup(self, call_id: str, now: float) -> Call | None:
        """End a connected call; its specialists go to wrap-up."""
        call = self.calls.get(call_id)
        if call is None or call.state != CallState.CONNECTED:
            return None
        for agent_id in call.agents:
            agent = self.agents.get(agent_id)
            if agent is not None and agent.call_id == call_id:
                agent.call_id = None
                self._set_state(agent, AgentState.WRAP_UP, now)
        if call.answered_at is not None:
            self.handle_times.add(call.queue, now - call.answered_at)
        call.state = CallState.ENDED
        del self.calls[call_id]
        return call

    def join(self, invitation_id: str, agent_id: str, now: float, offer: int | None = None
             ) -> Call:
        """The specialist answers an invitation: they join its connected call."""
        invitation = self._ringing(invitation_id, agent_id, offer)
        call = self.calls.get(invitation.joins or "")
        if call is None or call.state != CallState.CONNECTED:
            raise Refused("offer_gone", "the session you were invited to has ended")
        agent = self.agents[agent_id]
        self._unwait(invitation)
        invitation.state = CallState.ENDED
        invitation.ringing_agent = None
        del self.calls[invitation_id]
        call.agents.append(agent_id)
        agent.missed_streak = 0
        agent.calls_answered += 1
        agent.call_id = call.id
        self._set_state(agent, AgentState.IN_CALL, now)
        return call

    def leave(self, call_id: str, agent_id: str, now: float) -> Call | None:
        """One specialist leaves a call others stay in; they go to wrap-up."""
        call = self.calls.get(call_id)
        if call is None or call.state != CallState.CONNECTED or agent_id not in call.agents:
            return None
        if len(call.agents) < 2:
            return None
        call.agents.remove(agent_id)
        agent = self.agents.get(agent_id)
        if agent is not None and agent.call_id == call_id:
            agent.call_id = None
            self._set_state(agent, AgentState.WRAP_UP, now)
        return call

    def requeue(self, call_id: str, agent_id: str, now: float) -> Call | None:
        """A connected call lost its specialist: back to the head of its queue."""
        call = self.calls.get(call_id)
        if call is None or call.state != CallState.CONNECTED or agent_id not in call.agents:
            return None
        call.agents.remove(agent_id)
        agent = self.agents.get(agent_id)
        if agent is not None and agent.call_id == call_id:
            agent.call_id = None
            self._set_state(agent, AgentState.AWAY, now)
        if call.agents:
            return call
        call.state = CallState.QUEUED
        call.priority = REQUEUE_PRIORITY
        call.declined_by.append(agent_id)
        key = (call.priority, call.enqueued_at, next(self._seq), call.id)
        self._keys[call.id] = key
        self._waiting[call.queue].add(key)
        return call

    # ---- reading ---------------------------------------------------------------

    def position(self, call_id: str) -> int | None:
        """1-based place among the calls waiting in the call's queue (ringing included)."""
        call = self.calls.get(call_id)
        if call is None or call.state not in (CallState.QUEUED, CallState.RINGING):
            return None
        return int(self._waiting[call.queue].bisect_left(self._keys[call_id])) + 1

    def waiting_calls(self, queue: str) -> Iterator[Call]:
        for key in self._waiting[queue]:
            yield self.calls[key[3]]

    def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        waiting = self._waiting[queue]
        counts = {s: 0 for s in AgentState}
        for agent in self.agents.values():
            if queue in agent.skills:
                counts[agent.state] += 1
        return queue_snapshot(queue, len(waiting), now - min((k[1] for k in waiting), default=now),
                              len(self._available[queue]), counts, self.handle_times.get(queue))

    # ---- internals -------------------------------------------------------------

    def _agent(self, agent_id: str) -> Agent:
        try:
            return self.agents[agent_id]
        except KeyError:
            raise Refused("not_logged_in", f"specialist {agent_id} is not logged in") from None

    def _ringing(self, call_id: str, agent_id: str, offer: int | None) -> Call:
        call = self.calls.get(call_id)
        if call is None or not call.rings(agent_id, offer):
            raise Refused("offer_gone", f"call {call_id} is not ringing you")
        return call

    def _ring_best(self, call: Call, now: float) -> Offer | None:
        config = self.queues[call.queue]
        pool = set(self._available[call.queue])
        overflow_q = config.overflow_to if call.overflowed else None
        if overflow_q is not None:
            pool |= self._available[overflow_q]
        pool.difference_update(call.declined_by)
        if call.blocked:
            pool.difference_update(a for a, until in call.blocked.items() if until > now)
        if call.target_agent is not None:
            pool &= {call.target_agent}
        if not pool:
            return None
        strategy = get_strategy(config.strategy).key
        tried = set(call.missed_by).union(call.blocked)
        agents, queue = self.agents, call.queue

        def rank(agent_id: str) -> tuple[float | str, ...]:
            # per specialist per call rung: no float(), locals only (bench.routing's burst)
            agent = agents[agent_id]
            level = agent.skills.get(queue)
            if level is None:
                level = agent.skills[overflow_q or ""] + OVERFLOW_LEVEL_PENALTY
            return (agent_id in tried, level, *strategy(agent), agent_id)

        agent = agents[min(pool, key=rank)]
        call.state = CallState.RINGING
        call.ringing_agent = agent.id
        call.offer_number += 1
        agent.call_id = call.id
        agent.last_offered = now
        self._set_state(agent, AgentState.RINGING, now)
        return Offer(
            call_id=call.id,
            agent_id=agent.id,
            queue=call.queue,
            offer=call.offer_number,
            via_overflow=call.queue not in agent.skills,
        )

    def _release(self, call: Call, now: float) -> None:
        """A ringing call goes back to waiting and its specialist to available."""
        agent_id = call.ringing_agent
        call.ringing_agent = None
        call.state = CallState.QUEUED
        agent = self.agents.get(agent_id or "")
        if agent is not None and agent.call_id == call.id:
            agent.call_id = None
            self._set_state(agent, AgentState.AVAILABLE, now)

    def _unwait(self, call: Call) -> None:
        key = self._keys.pop(call.id)
        self._waiting[call.queue].discard(key)
        target = self.queues[call.queue].overflow_to
        if call.overflowed and target is not None:
            self._overflow[target].discard(key)

    def _set_state(self, agent: Agent, state: AgentState, now: float) -> None:
        if state == AgentState.AVAILABLE and agent.state != AgentState.AVAILABLE:
            agent.idle_since = now
        agent.state = state
        self._index(agent)

    def _index(self, agent: Agent) -> None:
        ready = agent.connected and agent.state == AgentState.AVAILABLE
        for q in agent.skills:
            if ready:
                self._available[q].add(agent.id)
            else:
                self._available[q].discard(agent.id)


