"""The Redis router against the in-memory one: the same operations give the same results.

A seeded random walk drives both routers through every transaction (joins,
status changes, calls, offers, accept / decline / timeout / withdraw, overflow,
hangup, requeue, bad requests) and compares every answer, `Refused` codes
included, and the full readable state after each step.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling.errors import Refused
from signaling.memory import MemoryRouter
from signaling.model import Agent, AgentState, Call, CallState, QueueConfig

QUEUES = [
    QueueConfig(id="tax", name="Tax", overflow_after_s=5, overflow_to="general"),
    QueueConfig(id="registration", name="Registration", strategy="fewest-calls",
                overflow_to="tax"),
    QueueConfig(id="general", name="General"),
]
AGENTS = [f"a{i}" for i in range(8)]


async def outcome(coro: Any) -> Any:
    try:
        return ("ok", await coro)
    except Refused as exc:
        return ("refused", exc.code)


class Pair:
    """Both routers, stepped together."""

    def __init__(self, memory: MemoryRouter, redis: RedisRouter) -> None:
        self.routers = (memory, redis)
        self.calls: list[str] = []
        self.succeeded: set[str] = set()

    async def both(self, method: str, *args: Any) -> Any:
        results = [await outcome(getattr(r, method)(*args)) for r in self.routers]
        assert results[0] == results[1], (method, args, results)
        if results[0][0] == "ok" and results[0][1]:
            self.succeeded.add(method)
        return results[0]

    def pick(self, rng: random.Random, op: str) -> tuple[str, str]:
        """An agent and a call the operation can apply to, mostly (sometimes not: refusals)."""
        center = self.routers[0].center
        wanted = {"answer": CallState.RINGING, "hangup": CallState.CONNECTED,
                  "requeue": CallState.CONNECTED}.get(op)
        calls = [c.id for c in center.calls.values() if wanted in (None, c.state)]
        agents = [a.id for a in center.agents.values()
                  if op != "wrapup" or a.state == AgentState.WRAP_UP]
        if rng.random() < 0.1 or not calls:
            calls = [*self.calls, "nope"]
        if rng.random() < 0.1 or not agents:
            agents = AGENTS
        return rng.choice(agents), rng.choice(calls)

    async def state(self, now: float) -> None:
        for q in QUEUES:
            await self.both("snapshot", q.id, now)
            await self.both("waiting", q.id)
        for a in AGENTS:
            await self.both("get_agent", a)
        for c in self.calls[-25:]:
            await self.both("get_call", c)
            await self.both("position", c)
        for t in {"t0", "t1", "t2"}:
            mem, red = [sorted(await r.calls_of_terminal(t), key=lambda c: c.id)
                        for r in self.routers]
            assert mem == red


async def walk(pair: Pair, rng: random.Random, steps: int) -> None:
    now = 1000.0
    for step in range(steps):
        now += rng.choice([0.001, 0.25, 1.5, 7.0])
        op = rng.choice(["join", "join", "status", "status", "call", "call", "dispatch", "answer",
                         "answer", "answer", "remove", "overflow", "hangup", "requeue",
                         "wrapup", "wrapup", "connected", "leave"])
        agent, call_id = pair.pick(rng, op)
        if op == "join":
            skills = {q.id: rng.randint(1, 3) for q in QUEUES if rng.random() < 0.5}
            skills["bogus"] = 1
            for router in pair.routers:
                await router.agent_join(Agent(id=agent, name=agent.upper(), skills=dict(skills),
                                              department="D"), now)
        elif op == "status":
            status = rng.choice([AgentState.AVAILABLE, AgentState.AVAILABLE, AgentState.AWAY])
            await pair.both("set_status", agent, status, now)
        elif op == "call":
            cid = f"c{step}"
            queue = rng.choice([q.id for q in QUEUES] + ["nowhere"])
            terminal, priority = rng.choice(["t0", "t1", "t2"]), rng.choice([0, 0, 1])
            await pair.both("check_open", queue)
            for router in pair.routers:
                call = Call(id=cid, session_id="s" + cid, queue=queue,
                            terminal_id=terminal, enqueued_at=now, priority=priority,
                            context={"n": step})
                await outcome(router.enqueue(call))
            pair.calls.append(cid)
            await pair.both("dispatch", now)
        elif op == "dispatch":
            await pair.both("dispatch", now)
        elif op == "answer":
            verb = rng.choice(["accept", "decline", "timeout", "withdraw"])
            mem_call = await pair.routers[0].get_call(call_id)
            ringing = mem_call.ringing_agent if mem_call else None
            target = ringing if ringing and rng.random() < 0.85 else agent
            await pair.both(verb, call_id, target, now)
            await pair.both("dispatch", now)
        elif op == "remove":
            await pair.both("remove", call_id, now)
        elif op == "overflow":
            await pair.both("overflow", call_id)
        elif op == "hangup":
            await pair.both("hangup", call_id, now)
        elif op == "requeue":
            mem_call = await pair.routers[0].get_call(call_id)
            target = mem_call.agents[0] if mem_call and mem_call.agents else agent
            await pair.both("requeue", call_id, target, now)
        elif op == "wrapup":
            await pair.both("wrapup_done", agent, now)
        elif op == "connected":
            await pair.both("set_connected", agent, rng.random() < 0.6)
        elif op == "leave":
            mem_agent = await pair.routers[0].get_agent(agent)
            if (mem_agent is None or mem_agent.call_id is None) and rng.random() < 0.3:
                await pair.both("agent_leave", agent)
        if step % 10 == 0:
            await pair.state(now)
    await pair.state(now)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_walk_gives_identical_results(redis: Redis, key_prefix: str,
                                                   seed: int) -> None:
    red = RedisRouter(redis, key_prefix, QUEUES)
    await red.start()
    pair = Pair(MemoryRouter(QUEUES), red)
    await walk(pair, random.Random(seed), 500)
    assert {"dispatch", "accept", "decline", "timeout", "withdraw", "remove", "overflow",
            "hangup", "requeue", "wrapup_done"} <= pair.succeeded
