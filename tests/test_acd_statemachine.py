"""Hypothesis state machine over the routing core: random operations, invariants always hold."""

from __future__ import annotations

import contextlib

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from signaling.acd import CallCenter
from signaling.errors import Refused
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig

QUEUES = ["tax", "registration"]
AGENTS = ["a1", "a2", "a3", "a4"]
TERMINALS = [f"t{i}" for i in range(8)]


class RoutingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.cc = CallCenter(
            [
                QueueConfig(id="tax", name="Tax", overflow_to="registration",
                            decline_block_s=5.0),
                QueueConfig(id="registration", name="Registration", strategy="fewest-calls"),
            ]
        )
        self.now = 0.0
        self.seq = 0
        self.created: set[str] = set()
        self.finished: set[str] = set()

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    @rule(agent=st.sampled_from(AGENTS), tax=st.integers(0, 3), reg=st.integers(0, 3))
    def join(self, agent: str, tax: int, reg: int) -> None:
        skills = {q: lvl for q, lvl in (("tax", tax), ("registration", reg)) if lvl}
        self.cc.agent_join(Agent(id=agent, name=agent, skills=skills), self.tick())

    @rule(agent=st.sampled_from(AGENTS), status=st.sampled_from(["available", "away"]))
    def status(self, agent: str, status: str) -> None:
        with contextlib.suppress(Refused):
            self.cc.set_status(agent, AgentState(status), self.tick())

    @rule(agent=st.sampled_from(AGENTS), connected=st.booleans())
    def connection(self, agent: str, connected: bool) -> None:
        self.cc.set_connected(agent, connected)

    @rule(terminal=st.sampled_from(TERMINALS), queue=st.sampled_from(QUEUES))
    def enqueue(self, terminal: str, queue: str) -> None:
        if any(c.terminal_id == terminal for c in self.cc.calls.values()):
            return
        self.seq += 1
        call_id = f"c{self.seq}"
        self.cc.enqueue(
            Call(
                id=call_id,
                session_id="s" + call_id,
                queue=queue,
                terminal_id=terminal,
                enqueued_at=self.tick(),
            )
        )
        self.created.add(call_id)

    @rule()
    def dispatch(self) -> None:
        now = self.tick()
        for offer in self.cc.dispatch(now):
            assert self.cc.calls[offer.call_id].ringing_agent == offer.agent_id
        for c in self.cc.calls.values():
            if c.state != CallState.QUEUED:
                continue
            eligible = {
                a.id
                for a in self.cc.agents.values()
                if a.state == AgentState.AVAILABLE
                and a.connected
                and (c.queue in a.skills or (c.overflowed and "registration" in a.skills))
            }
            blocked = {a for a, until in c.blocked.items() if until > now}
            free = eligible - set(c.declined_by) - blocked
            assert not free, f"{c.id} waits while {free} are free"

    def _ringing(self) -> list[Call]:
        return sorted(
            (c for c in self.cc.calls.values() if c.state == CallState.RINGING), key=lambda c: c.id
        )

    def _connected(self) -> list[Call]:
        return sorted(
            (c for c in self.cc.calls.values() if c.state == CallState.CONNECTED),
            key=lambda c: c.id,
        )

    @precondition(lambda self: self._ringing())
    @rule(data=st.data(), what=st.sampled_from(["accept", "decline", "timeout", "withdraw"]))
    def answer(self, data: st.DataObject, what: str) -> None:
        call = data.draw(st.sampled_from(self._ringing()))
        agent = call.ringing_agent
        assert agent is not None
        getattr(self.cc, what)(call.id, agent, self.tick())

    @precondition(lambda self: self._ringing())
    @rule(data=st.data(), stranger=st.sampled_from(AGENTS))
    def accept_by_someone_else(self, data: st.DataObject, stranger: str) -> None:
        call = data.draw(st.sampled_from(self._ringing()))
        if stranger == call.ringing_agent:
            return
        try:
            self.cc.accept(call.id, stranger, self.tick())
        except Refused as exc:
            assert exc.code == "offer_gone"
        else:
            raise AssertionError("a call was answered by a specialist it was not ringing")

    @precondition(lambda self: self.cc.calls)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.cc.calls)))
        if self.cc.remove(call_id, self.tick()) is not None:
            self.finished.add(call_id)

    @precondition(lambda self: self.cc.calls)
    @rule(data=st.data())
    def overflow(self, data: st.DataObject) -> None:
        self.cc.overflow(data.draw(st.sampled_from(sorted(self.cc.calls))))

    @precondition(lambda self: self._connected())
    @rule(data=st.data(), requeue=st.booleans())
    def finish(self, data: st.DataObject, requeue: bool) -> None:
        call = data.draw(st.sampled_from(self._connected()))
        if requeue:
            assert self.cc.requeue(call.id, call.agents[0], self.tick()) is not None
        else:
            assert self.cc.hangup(call.id, self.tick()) is not None
            self.finished.add(call.id)

    @rule(agent=st.sampled_from(AGENTS))
    def wrapup_done(self, agent: str) -> None:
        self.cc.wrapup_done(agent, self.tick())

    @rule(agent=st.sampled_from(AGENTS))
    def leave(self, agent: str) -> None:
        a = self.cc.agents.get(agent)
        if a is not None and a.call_id is None:
            self.cc.agent_leave(agent)

    @invariant()
    def no_double_assignment(self) -> None:
        ringing_agents = [c.ringing_agent for c in self.cc.calls.values() if c.ringing_agent]
        assert len(ringing_agents) == len(set(ringing_agents)), "an agent rings for two calls"
        in_call = [a for c in self._connected() for a in c.agents]
        assert len(in_call) == len(set(in_call)), "an agent is in two calls"
        assert not set(ringing_agents) & set(in_call)
        for c in self.cc.calls.values():
            if c.state == CallState.RINGING:
                agent = self.cc.agents[c.ringing_agent or ""]
                assert agent.state == AgentState.RINGING and agent.call_id == c.id
            if c.state == CallState.CONNECTED:
                assert c.agents and c.ringing_agent is None
        for a in self.cc.agents.values():
            if a.state in (AgentState.RINGING, AgentState.IN_CALL):
                assert a.call_id in self.cc.calls

    @invariant()
    def no_call_lost(self) -> None:
        live = set(self.cc.calls)
        assert live | self.finished == self.created
        assert not live & self.finished
        for c in self.cc.calls.values():
            waiting = c.state in (CallState.QUEUED, CallState.RINGING)
            assert (self.cc.position(c.id) is not None) == waiting

    @invariant()
    def positions_are_a_permutation(self) -> None:
        for q in QUEUES:
            positions = sorted(self.cc.position(c.id) or 0 for c in self.cc.waiting_calls(q))
            assert positions == list(range(1, len(positions) + 1))

    @invariant()
    def available_index_matches_states(self) -> None:
        for q in QUEUES:
            expected = {
                a.id
                for a in self.cc.agents.values()
                if q in a.skills and a.connected and a.state == AgentState.AVAILABLE
            }
            assert self.cc._available[q] == expected


TestRouting = RoutingMachine.TestCase
TestRouting.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
