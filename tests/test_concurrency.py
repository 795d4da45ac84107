"""Hundreds of terminals and dozens of specialists at once, through the real server.

Specialists randomly accept, decline or let offers time out; terminals randomly
cancel. Afterwards: no call was answered twice, no offer is left ringing on a console,
every offer the log holds was settled exactly once, and every call reached an end that
the session log agrees with; on one node (memory routing) also: no specialist rang for
two calls at once or was in two calls at once, in the order their socket delivered.

"Rang for two calls at once" is judged from each specialist's own socket, whose order
the server keeps. With Redis, two tasks of a node (a ring timeout freeing a specialist,
a dispatch offering them the next call) may send in the other order than their Lua
scripts ran, so there a new offer may come before the last one's withdrawal
(docs/protocol.md, `call.withdrawn`), or even a withdrawal before its offer: the check
then only asks that every offer was settled in the end. Order *across* sockets (one
call's withdrawal from one specialist, its offer to the next) is not defined for any
client, so "one call rang two specialists" is checked in the session log instead:
each offer settled once. Across nodes, tests/cluster checks it on Redis itself.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

import aiohttp

from server import keys
from signaling import events as ev
from tests.helpers import Peer, add_specialist, add_terminal, connect

TERMINALS = 200
SPECIALISTS = 24
QUEUES = [
    {"id": "tax", "name": "Tax", "ring_timeout_s": 0.4, "wrapup_s": 0.1},
    {
        "id": "registration",
        "name": "Registration",
        "ring_timeout_s": 0.4,
        "wrapup_s": 0.1,
        "overflow_after_s": 1.0,
        "overflow_to": "tax",
    },
]


class Ledger:
    """What the clients saw, checked as it happens and at the end."""

    def __init__(self, strict_order: bool) -> None:
        self.strict_order = strict_order
        self.ringing: dict[str, set[str]] = {}  # specialist -> offers not yet settled
        self.early: set[tuple[str, str]] = set()  # (specialist, call) withdrawn before offered
        self.offers = 0
        self.overtaken = 0  # offers that came before the previous one's settlement
        self.in_call: dict[str, str] = {}  # specialist -> call connected
        self.answered: Counter[str] = Counter()
        self.outcome: dict[str, str] = {}
        self.violations: list[str] = []

    def offered(self, agent: str, call_id: str) -> None:
        if (agent, call_id) in self.early:  # its withdrawal came first: settled already
            self.early.discard((agent, call_id))
            self.overtaken += 1
            return
        ringing = self.ringing.setdefault(agent, set())
        for earlier in ringing:
            if self.strict_order:
                self.violations.append(f"{agent} offered {call_id} while ringing for {earlier}")
            self.overtaken += 1
        ringing.add(call_id)
        self.offers += 1

    def released(self, agent: str, call_id: str) -> None:
        self.ringing.get(agent, set()).discard(call_id)

    def withdrawn(self, agent: str, call_id: str) -> None:
        ringing = self.ringing.get(agent, set())
        if call_id in ringing:
            ringing.discard(call_id)
        elif self.strict_order:
            self.violations.append(f"{call_id} withdrawn from {agent} before it was offered")
        else:
            self.early.add((agent, call_id))

    def connected(self, agent: str, call_id: str) -> None:
        self.released(agent, call_id)
        # Across nodes the wrap-up timer may free a specialist whose call.ended is still on
        # its way from the other node: only one node's order proves "in two calls at once".
        if agent in self.in_call and self.strict_order:
            self.violations.append(f"{agent} connected to {call_id} in {self.in_call[agent]}")
        self.in_call[agent] = call_id
        self.answered[call_id] += 1

    def ended(self, agent: str, call_id: str) -> None:
        if self.in_call.get(agent) == call_id:
            del self.in_call[agent]

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait (up to `timeout`) for the withdrawals still on their way: a socket closed
        now would drop them unread (aiohttp's close discards what is pending)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.still_ringing() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    def check_end(self, terminals: int) -> None:
        """What the clients saw, once every call has ended."""
        assert self.violations == []
        assert self.still_ringing() == {}, "offers left ringing"
        assert len(self.outcome) == terminals, "every call ended"
        assert [c for c, n in self.answered.items() if n > 1] == []
        reasons = Counter(self.outcome.values())
        # Both endings happened many times (how many were answered depends on the machine).
        assert reasons["hangup"] == len(self.answered) and reasons["hangup"] >= 5
        assert reasons["cancelled"] > 0

    def still_ringing(self) -> dict[str, set[str]]:
        """Offers each console still shows: none once every call has ended."""
        return {agent: calls for agent, calls in self.ringing.items() if calls}


SETTLING = {ev.DECLINED, ev.WITHDRAWN, ev.ANSWERED}  # a miss is logged with its withdrawal


def unsettled_offers(events: list[Any], strict_order: bool) -> list[str]:
    """Offers in one call's log not settled exactly once by the specialist offered.

    In order when `strict_order`; with Redis the log may hold a call's next offer before
    the last one's settlement (two tasks commit in the other order), so there each
    specialist's offers and settlements are only counted.
    """
    offers: Counter[str] = Counter()
    settled: Counter[str] = Counter()
    problems, open_offer = [], None
    for event in events:
        agent = event.data.get("agent_id")
        if event.type == ev.OFFERED:
            offers[agent] += 1
            if strict_order and open_offer is not None:
                problems.append(f"offered to {agent} while ringing {open_offer}")
            open_offer = agent
        elif event.type in SETTLING and agent is not None:
            settled[agent] += 1
            if strict_order and open_offer != agent:
                problems.append(f"{event.type} by {agent}, ringing {open_offer}")
            open_offer = None
    # With Redis a cancel may withdraw an offer between the router's dispatch and its log
    # entry: the withdrawal is then the only trace of it (at most one per specialist).
    slack = 0 if strict_order else 1
    if any(not offers[a] <= settled[a] <= offers[a] + slack for a in offers | settled):
        problems.append(f"offers {dict(offers)} settled {dict(settled)}")
    return problems


async def specialist_loop(peer: Peer, name: str, ledger: Ledger, rng: random.Random) -> None:
    """React to every message as it comes, like a console would; ends when the socket closes."""
    await peer.send({"type": "agent.status", "status": "available"})
    async for frame in peer.ws:
        msg = json.loads(frame.data)
        kind, call_id = msg["type"], msg.get("call_id")
        if kind == "call.offered":
            ledger.offered(name, call_id)
            choice = rng.choices(["accept", "decline", "ignore"], weights=[6, 2, 1])[0]
            if choice != "ignore":  # settled by call.connected or call.withdrawn
                await peer.send({"type": f"call.{choice}", "call_id": call_id})
        elif kind == "call.withdrawn":
            ledger.withdrawn(name, call_id)
        elif kind == "call.connected":
            ledger.connected(name, call_id)
            await asyncio.sleep(rng.uniform(0, 0.05))
            await peer.send({"type": "call.hangup", "call_id": call_id})
        elif kind == "call.ended":
            ledger.ended(name, call_id)
            await peer.send({"type": "agent.wrapup_done"})
        elif kind == "agent.status" and msg["status"] == "away":
            await peer.send({"type": "agent.status", "status": "available"})


async def terminal_run(peer: Peer, ledger: Ledger, rng: random.Random) -> None:
    queue = rng.choice(["tax", "registration"])
    await peer.send({"type": "call.request", "queue": queue})
    queued = await peer.recv("call.queued")
    call_id = queued["call_id"]
    # Some give up at once, the others after a patience of a few seconds if nobody answers.
    patience = rng.uniform(0, 0.3) if rng.random() < 0.25 else rng.uniform(3, 8)
    try:
        await peer.recv("call.connected", timeout=patience, call_id=call_id)
    except TimeoutError:
        await peer.send({"type": "call.cancel", "call_id": call_id})
    ended = await peer.recv("call.ended", timeout=60, call_id=call_id)
    ledger.outcome[call_id] = ended["reason"]


async def test_no_call_lost_or_double_assigned(
    aiohttp_client: Any, make_app: Any, routing_backend: str
) -> None:
    rng = random.Random(20261127)
    app = make_app(
        queues=QUEUES, server={"rate_per_s": 1000, "rate_burst": 1000, "idle_timeout_s": 600}
    )
    client = await aiohttp_client(app, connector=aiohttp.TCPConnector(limit=0))
    app = client.server.app
    ledger = Ledger(strict_order=routing_backend == "memory")
    specialists = []
    for i in range(SPECIALISTS):
        skills = rng.choice([{"tax": 1}, {"registration": 1}, {"tax": 2, "registration": 1}])
        token = await add_specialist(app, f"s{i}", skills)
        specialists.append((f"s{i}", await connect(client, token)))
    loops = [
        asyncio.create_task(specialist_loop(p, n, ledger, random.Random(rng.random())))
        for n, p in specialists
    ]
    terminals = [await connect(client, await add_terminal(app, f"T{i}")) for i in range(TERMINALS)]
    await asyncio.wait_for(
        asyncio.gather(*(terminal_run(t, ledger, random.Random(rng.random())) for t in terminals)),
        150,
    )
    await ledger.settle()
    for _, peer in specialists:
        await peer.close()
    await asyncio.gather(*loops)

    ledger.check_end(TERMINALS)

    sessions, cursor = await app[keys.DB].list_sessions(limit=500)
    assert cursor is None and len(sessions) == TERMINALS
    by_call = {s.call_id: s for s in sessions}
    for session in sessions:
        detail = await app[keys.DB].get_session(session.id)
        assert detail is not None
        assert unsettled_offers(detail.events, ledger.strict_order) == [], session.call_id
    for call_id, reason in ledger.outcome.items():
        expected = "ended" if reason == "hangup" else "abandoned"
        assert by_call[call_id].state == expected, (call_id, reason, by_call[call_id])
    for queue in ("tax", "registration"):
        assert await app[keys.BOARD].router.waiting(queue) == []
