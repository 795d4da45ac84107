"""The Redis router against the in-memory one: the same operations give the same results.

A seeded random walk drives both routers through every transaction (joins,
status changes, calls, offers, accept / decline / timeout / withdraw, overflow,
hangup, requeue, invitations joined or left, hand-offs to a phone, bad requests) and compares every
answer, `Refused` codes included, and the full readable state after each step.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from redis.asyncio import Redis

from server.cluster.router import RedisRouter
from signaling.acd import REQUEUE_PRIORITY
from signaling.errors import Refused
from signaling.memory import MemoryRouter
from signaling.model import Agent, AgentState, Call, CallState, Offer, QueueConfig
from signaling.strategies import STRATEGIES

QUEUES = [  # every strategy; decline blocks that end within the walk, and one that does not
    QueueConfig(id="tax", name="Tax", overflow_after_s=5, overflow_to="general",
                decline_block_s=3.0),
    QueueConfig(id="registration", name="Registration", strategy="fewest-calls",
                overflow_to="tax", decline_block_s=10.0),
    QueueConfig(id="general", name="General", strategy="round-robin"),
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
        self.targeted_offers = 0
        self.after_block = 0  # offers to a specialist who declined that call before
        self.stale_refused = 0  # answers refused only because they named an older offer
        self.offer_rng = random.Random(7)  # its own: the walk's steps stay as they were

    async def both(self, method: str, *args: Any) -> Any:
        results = [await outcome(getattr(r, method)(*args)) for r in self.routers]
        assert results[0] == results[1], (method, args, results)
        if results[0] == ("refused", "offer_gone") and len(args) == 4 and args[3] is not None:
            call = self.routers[0].center.calls.get(args[0])
            if call is not None and call.ringing_agent == args[1]:  # refused for its number
                self.stale_refused += 1
        if results[0][0] == "ok" and results[0][1]:
            self.succeeded.add(method)
        if method == "dispatch" and results[0][0] == "ok":
            self.check_targets(results[0][1])
        return results[0]

    def check_targets(self, offers: list[Offer]) -> None:
        """An invitation naming a specialist is offered to them and nobody else."""
        for offer in offers:
            call = self.routers[0].center.calls[offer.call_id]
            self.after_block += offer.agent_id in call.blocked
            target = call.target_agent
            if target is not None:
                assert offer.agent_id == target
                self.targeted_offers += 1

    def pick(self, rng: random.Random, op: str) -> tuple[str, str]:
        """An agent and a call the operation can apply to, mostly (sometimes not: refusals)."""
        center = self.routers[0].center
        wanted = {"answer": CallState.RINGING, "hangup": CallState.CONNECTED,
                  "requeue": CallState.CONNECTED, "invite": CallState.CONNECTED,
                  "part": CallState.CONNECTED}.get(op)
        calls = [c.id for c in center.calls.values() if wanted in (None, c.state)]
        if op in ("answer", "part"):  # invitations and the calls they join, first
            calls = [c for c in calls if c.startswith("i")
                     or len(center.calls[c].agents) > 1] or calls
        agents = [a.id for a in center.agents.values()
                  if op != "wrapup" or a.state == AgentState.WRAP_UP]
        if rng.random() < 0.1 or not calls:
            calls = [*self.calls, "nope"]
        if rng.random() < 0.1 or not agents:
            agents = AGENTS
        return rng.choice(agents), rng.choice(calls)

    async def state(self, now: float) -> None:
        await self.both("snapshots", [q.id for q in QUEUES], now)
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


async def agent_step(pair: Pair, rng: random.Random, op: str, agent: str, now: float) -> None:
    if op == "join":
        skills = {q.id: rng.randint(1, 3) for q in QUEUES if rng.random() < 0.5}
        skills["bogus"] = 1
        for router in pair.routers:
            await router.agent_join(Agent(id=agent, name=agent.upper(), skills=dict(skills),
                                          department="D"), now)
    elif op == "status":
        status = rng.choice([AgentState.AVAILABLE, AgentState.AVAILABLE, AgentState.AWAY])
        await pair.both("set_status", agent, status, now)
    elif op == "wrapup":
        await pair.both("wrapup_done", agent, now)
    elif op == "connected":
        await pair.both("set_connected", agent, rng.random() < 0.6)
    elif op == "leave":
        mem_agent = await pair.routers[0].get_agent(agent)
        if (mem_agent is None or mem_agent.call_id is None) and rng.random() < 0.3:
            await pair.both("agent_leave", agent)


async def new_call(pair: Pair, rng: random.Random, step: int, now: float) -> None:
    cid = f"c{step}"
    queue = rng.choice([q.id for q in QUEUES] + ["nowhere"])
    terminal, priority = rng.choice(["t0", "t1", "t2"]), rng.choice([0, 0, 1])
    await pair.both("check_open", queue)
    for router in pair.routers:
        call = Call(id=cid, session_id="s" + cid, queue=queue, terminal_id=terminal,
                    enqueued_at=now, priority=priority, context={"n": step})
        await outcome(router.enqueue(call))
    pair.calls.append(cid)
    await pair.both("dispatch", now)


async def call_step(pair: Pair, rng: random.Random, op: str, agent: str, call_id: str,
                    now: float) -> None:
    mem_call = await pair.routers[0].get_call(call_id)
    if op == "answer":
        verb = rng.choice(["accept", "accept", "decline", "timeout", "withdraw"])
        if mem_call is not None and mem_call.is_invitation and verb == "accept":
            verb = "join"
        ringing = mem_call.ringing_agent if mem_call else None
        target = ringing if ringing and rng.random() < 0.85 else agent
        args: list[Any] = [call_id, target, now]
        if verb != "withdraw":  # the offer answered: the current one, an older one, or unsaid
            current = mem_call.offer_number if mem_call else 1
            args.append(pair.offer_rng.choice([None, current, current, current, current - 1,
                                               current + 1]))
        await pair.both(verb, *args)
        await pair.both("dispatch", now)
    elif op == "requeue":
        target = mem_call.agents[0] if mem_call and mem_call.agents else agent
        await pair.both("requeue", call_id, target, now)
    elif op in ("remove", "hangup"):
        await pair.both(op, call_id, now)
    elif op == "invite":
        await invite(pair, rng, call_id, mem_call, now)
    elif op == "part":
        target = rng.choice(mem_call.agents) if mem_call and mem_call.agents else agent
        await pair.both("leave", call_id, target, now)
    elif op == "overflow":
        await pair.both("overflow", call_id)
    elif op == "dispatch":
        await pair.both("dispatch", now)
    elif op == "hand_off":  # mostly by its terminal; sometimes another, or a second time
        terminal = mem_call.terminal_id if mem_call and rng.random() < 0.8 else "t1"
        await pair.both("hand_off", call_id, terminal, f"v{rng.randint(0, 3)}")


async def invite(pair: Pair, rng: random.Random, call_id: str, call: Call | None,
                 now: float) -> None:
    """Invite another department into a call (as `signaling.conference.invite` does)."""
    if (call is None or call.state != CallState.CONNECTED) and rng.random() < 0.8:
        return
    iid = f"i{len(pair.calls)}"
    agents = list(call.agents) if call is not None else []
    ready = [a.id for a in pair.routers[0].center.agents.values()
             if a.state == AgentState.AVAILABLE] or AGENTS
    named = rng.choice(ready) if rng.random() < 0.5 else None
    queue = rng.choice([q.id for q in QUEUES])
    leaver = agents[0] if agents and rng.random() < 0.5 else None
    for router in pair.routers:
        invitation = Call(
            id=iid, session_id="s" + call_id, queue=queue,
            terminal_id=call.terminal_id if call is not None else "t0", enqueued_at=now,
            priority=REQUEUE_PRIORITY, declined_by=list(agents), context={"inv": call_id},
            joins=call_id, target_agent=named,
            transfer_from=leaver)
        await outcome(router.enqueue(invitation))
    pair.calls.append(iid)
    await pair.both("dispatch", now)


AGENT_OPS = frozenset({"join", "status", "wrapup", "connected", "leave"})


async def walk(pair: Pair, rng: random.Random, steps: int, extra: tuple[str, ...] = ()
               ) -> None:
    now = 1000.0
    for step in range(steps):
        now += rng.choice([0.001, 0.25, 1.5, 7.0])
        op = rng.choice(["join", "join", "status", "status", "call", "call", "dispatch",
                         "answer", "answer", "answer", "remove", "overflow", "hangup",
                         "requeue", "wrapup", "wrapup", "connected", "leave",
                         "invite", "invite", "part", *extra])
        agent, call_id = pair.pick(rng, op)
        if op in AGENT_OPS:
            await agent_step(pair, rng, op, agent, now)
        elif op == "call":
            await new_call(pair, rng, step, now)
        else:
            await call_step(pair, rng, op, agent, call_id, now)
        if step % 10 == 0:
            await pair.state(now)
    await pair.state(now)


@pytest.mark.parametrize("seed", [2, 3, 4])
async def test_random_walk_gives_identical_results(redis: Redis, key_prefix: str,
                                                   seed: int) -> None:
    red = RedisRouter(redis, key_prefix, QUEUES)
    await red.start()
    pair = Pair(MemoryRouter(QUEUES), red)
    await walk(pair, random.Random(seed), 800)
    assert {"dispatch", "accept", "decline", "timeout", "withdraw", "remove", "overflow",
            "hangup", "requeue", "wrapup_done"} <= pair.succeeded
    assert pair.stale_refused > 0
    assert pair.after_block > 0


async def test_hand_offs_give_identical_results(redis: Redis, key_prefix: str) -> None:
    """The same walk with hand-offs to a phone among the steps: refused alike (not the
    terminal's, handed off already, no longer waiting), and the call keeps its place."""
    red = RedisRouter(redis, key_prefix, QUEUES)
    await red.start()
    pair = Pair(MemoryRouter(QUEUES), red)
    await walk(pair, random.Random(5), 600, extra=("hand_off", "hand_off"))
    assert {"hand_off", "accept", "hangup", "requeue"} <= pair.succeeded
    handed = [c for c in pair.routers[0].center.calls.values() if c.visitor is not None]
    assert handed and all([await pair.routers[1].get_call(c.id) == c for c in handed])


def test_the_walk_covers_every_strategy() -> None:
    assert {q.strategy for q in QUEUES} == set(STRATEGIES)


async def conference_round(pair: Pair, rng: random.Random, n: int, now: float) -> None:
    """A connected call, an invitation (to a queue or a named specialist), its answer."""
    center = pair.routers[0].center
    for i, agent in enumerate(list(center.agents.values())):  # distinct idle times: no ties
        await pair.both("wrapup_done", agent.id, now + i / 100)
        await pair.both("set_status", agent.id, AgentState.AVAILABLE, now + i / 100)
    now += 0.5
    cid = f"c{n}"
    for router in pair.routers:
        await router.enqueue(Call(id=cid, session_id="s" + cid, queue="tax",
                                  terminal_id=f"t{n % 3}", enqueued_at=now))
    pair.calls.append(cid)
    offers = (await pair.both("dispatch", now))[1]
    if not offers:
        return
    await pair.both("accept", cid, offers[0].agent_id, now)
    call = center.calls[cid]
    await invite(pair, rng, cid, call, now)
    iid = pair.calls[-1]
    offers = (await pair.both("dispatch", now))[1]
    invitee = offers[0].agent_id if offers else rng.choice(AGENTS)
    verb = rng.choice(["join", "join", "join", "decline", "timeout", "withdraw", "hangup"])
    if verb == "hangup":
        await pair.both("hangup", cid, now)
        verb = "join"
    await pair.both(verb, iid, invitee, now)
    if cid in center.calls and len(center.calls[cid].agents) > 1:
        await pair.both("leave", cid, rng.choice(center.calls[cid].agents), now)
        await pair.both("leave", cid, center.calls[cid].agents[0], now)
    await pair.both("hangup", cid, now)
    await pair.both("remove", iid, now)
    await pair.state(now)


async def test_invitations_give_identical_results(redis: Redis, key_prefix: str) -> None:
    red = RedisRouter(redis, key_prefix, QUEUES)
    await red.start()
    pair = Pair(MemoryRouter(QUEUES), red)
    rng = random.Random(7)
    for i, agent in enumerate(AGENTS):
        skills = {"tax": 1 + i % 2} if i < 4 else {"general": 1, "registration": 2}
        for router in pair.routers:
            await router.agent_join(Agent(id=agent, name=agent, skills=dict(skills)), 1000.0)
    for n in range(60):
        await conference_round(pair, rng, n, 1000.0 + n)
    assert {"join", "leave", "decline", "timeout", "withdraw"} <= pair.succeeded
    assert pair.targeted_offers > 0
