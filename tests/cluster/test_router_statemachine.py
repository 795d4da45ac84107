"""A hypothesis state machine drives the in-memory and the Redis router side by side.

Lua is a second implementation of `signaling/acd.py`; this machine, beside the seeded
walk of `test_router_shared.py`, is what holds the two together: hypothesis picks the
transactions (and shrinks a failure to the shortest sequence), every answer of both
routers must be equal, `Refused` codes included, and so must everything either one lets
you read after each step (queue figures and order, specialists, calls, positions, the
calls of each terminal).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling.acd import APPOINTMENT_PRIORITY, REQUEUE_PRIORITY
from signaling.memory import MemoryRouter
from signaling.model import Agent, AgentState, Call, CallState
from tests.cluster.conftest import REDIS_URL, flush_prefix
from tests.cluster.test_router_shared import QUEUES, outcome

AGENTS = ["a1", "a2", "a3", "a4", "a5"]
TERMINALS = ["t0", "t1", "t2", "t3"]
QUEUE_IDS = [q.id for q in QUEUES]
STEPS = [0.001, 0.5, 2.0, 4.0, 11.0]  # shorter and longer than the queues' decline blocks


class SideBySide(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.prefix = f"vwtest{uuid.uuid4().hex[:12]}"
        self.redis = Redis.from_url(REDIS_URL, decode_responses=True)
        self.memory = MemoryRouter(QUEUES)
        self.red = RedisRouter(self.redis, self.prefix, QUEUES)
        self.run(self.red.start())
        self.now = 1000.0
        self.calls: list[str] = []

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def both(self, method: str, *args: Any) -> Any:
        """One transaction on both routers: the same answer, or the same refusal."""
        results = [self.run(outcome(getattr(r, method)(*args))) for r in (self.memory, self.red)]
        assert results[0] == results[1], (method, args, results)
        return results[0]

    def teardown(self) -> None:
        self.run(flush_prefix(self.redis, self.prefix))
        self.run(self.redis.aclose())
        self.loop.close()

    def _in(self, *states: CallState) -> list[Call]:
        calls = self.memory.center.calls.values()
        return sorted((c for c in calls if c.state in states), key=lambda c: c.id)

    # ---- time and specialists --------------------------------------------------------

    @rule(step=st.sampled_from(STEPS))
    def time_passes(self, step: float) -> None:
        self.now += step

    @rule(agent=st.sampled_from(AGENTS),
          levels=st.lists(st.integers(0, 3), min_size=len(QUEUES), max_size=len(QUEUES)))
    def join(self, agent: str, levels: list[int]) -> None:
        skills = {q: lvl for q, lvl in zip(QUEUE_IDS, levels, strict=True) if lvl}
        for router in (self.memory, self.red):
            self.run(router.agent_join(Agent(id=agent, name=agent.upper(), skills=dict(skills)),
                                       self.now))

    @rule(agent=st.sampled_from(AGENTS), available=st.booleans())
    def status(self, agent: str, available: bool) -> None:
        state = AgentState.AVAILABLE if available else AgentState.AWAY
        self.both("set_status", agent, state, self.now)

    @rule(agent=st.sampled_from(AGENTS), connected=st.booleans())
    def connection(self, agent: str, connected: bool) -> None:
        self.both("set_connected", agent, connected)

    @rule(agent=st.sampled_from(AGENTS))
    def wrapup_done(self, agent: str) -> None:
        self.both("wrapup_done", agent, self.now)

    @rule(agent=st.sampled_from(AGENTS))
    def leave(self, agent: str) -> None:
        known = self.memory.center.agents.get(agent)
        if known is None or known.call_id is None:  # the switchboard ends their call first
            self.both("agent_leave", agent)

    # ---- calls ----------------------------------------------------------------------

    @rule(terminal=st.sampled_from(TERMINALS), queue=st.sampled_from([*QUEUE_IDS, "nowhere"]),
          priority=st.sampled_from([0, 0, 1, APPOINTMENT_PRIORITY]))  # walk-ins, arrived bookings
    def request(self, terminal: str, queue: str, priority: int) -> None:
        self.both("check_open", queue)
        call_id = f"c{len(self.calls)}"
        self.calls.append(call_id)
        for router in (self.memory, self.red):
            self.run(outcome(router.enqueue(Call(
                id=call_id, session_id="s" + call_id, queue=queue, terminal_id=terminal,
                enqueued_at=self.now, priority=priority, context={"n": len(self.calls)}))))

    @rule()
    def dispatch(self) -> None:
        self.both("dispatch", self.now)

    @precondition(lambda self: self._in(CallState.RINGING))
    @rule(data=st.data(), verb=st.sampled_from(["accept", "decline", "timeout", "withdraw"]),
          stranger=st.sampled_from([None, *AGENTS]), stale=st.sampled_from([None, 0, 0, -1]))
    def answer(self, data: st.DataObject, verb: str, stranger: str | None,
               stale: int | None) -> None:
        """The ringing specialist (or someone else) answers this offer, an older one, or
        none named; an invitation is answered by joining."""
        call = data.draw(st.sampled_from(self._in(CallState.RINGING)))
        agent = stranger or call.ringing_agent
        if verb == "accept" and call.is_invitation:
            verb = "join"
        args: list[Any] = [call.id, agent, self.now]
        if verb != "withdraw":
            args.append(None if stale is None else call.offer_number + stale)
        self.both(verb, *args)

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), verb=st.sampled_from(["remove", "overflow", "hangup"]))
    def end_or_overflow(self, data: st.DataObject, verb: str) -> None:
        call_id = data.draw(st.sampled_from(self.calls))
        self.both(verb, call_id, *(() if verb == "overflow" else (self.now,)))

    @precondition(lambda self: self._in(CallState.CONNECTED))
    @rule(data=st.data(), verb=st.sampled_from(["requeue", "leave"]))
    def lose_specialist(self, data: st.DataObject, verb: str) -> None:
        call = data.draw(st.sampled_from(self._in(CallState.CONNECTED)))
        self.both(verb, call.id, data.draw(st.sampled_from(call.agents)), self.now)

    @precondition(lambda self: self._in(CallState.CONNECTED))
    @rule(data=st.data(), queue=st.sampled_from(QUEUE_IDS),
          named=st.sampled_from([None, *AGENTS]), transfer=st.booleans())
    def invite(self, data: st.DataObject, queue: str, named: str | None,
               transfer: bool) -> None:
        """Another department into a connected call (as `signaling.conference` does)."""
        call = data.draw(st.sampled_from(self._in(CallState.CONNECTED)))
        invitation_id = f"i{len(self.calls)}"
        self.calls.append(invitation_id)
        for router in (self.memory, self.red):
            self.run(outcome(router.enqueue(Call(
                id=invitation_id, session_id=call.session_id, queue=queue,
                terminal_id=call.terminal_id, enqueued_at=self.now, priority=REQUEUE_PRIORITY,
                declined_by=list(call.agents), context={"inv": call.id}, joins=call.id,
                target_agent=named, transfer_from=call.agents[0] if transfer else None))))

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), stranger=st.booleans(), visitor=st.sampled_from(["v1", "v2"]))
    def hand_off(self, data: st.DataObject, stranger: bool, visitor: str) -> None:
        """A phone takes a call over (`signaling.handoff`), from its terminal or not."""
        call_id = data.draw(st.sampled_from(self.calls))
        call = self.memory.center.calls.get(call_id)
        terminal = call.terminal_id if call is not None and not stranger else "t3"
        self.both("hand_off", call_id, terminal, visitor)

    # ---- what both let you read ---------------------------------------------------------

    @invariant()
    def same_readable_state(self) -> None:
        for q in QUEUE_IDS:
            self.both("snapshot", q, self.now)
            self.both("waiting", q)
        for agent in AGENTS:
            self.both("get_agent", agent)
        for call_id in self.calls:
            self.both("get_call", call_id)
            self.both("position", call_id)
        for terminal in TERMINALS:
            mem, red = [sorted(self.run(r.calls_of_terminal(terminal)), key=lambda c: c.id)
                        for r in (self.memory, self.red)]
            assert mem == red

            live = [c.id for c in mem if not c.is_invitation and c.visitor is None]
            assert len(live) <= 1, (terminal, live)  # a request sent again makes no second


TestSideBySide = SideBySide.TestCase
TestSideBySide.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
