"""`RedisRouter`: the `signaling.backend.Router` whose state lives in Redis.

Every method is one Lua script (`scripts.py`: the prelude and the calls' transactions,
`answers.py`, `specialists.py`, `dispatch.py`, `invitations.py`, `queries.py`; those in
`replay.REPLAYED` keep their reply for the step's attempt, `replay.py`), so each
transaction is atomic across all nodes and gives the same results as `MemoryRouter`, `Refused` codes
included: the Lua is a second implementation of `signaling/acd.py`, held to it by the
shared tests (docs/design.md, "Routing: two implementations").
"""

from __future__ import annotations

import re
import struct
from collections.abc import Sequence
from typing import Any

import msgspec
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from server.steptrace import waiting
from signaling import order, retry
from signaling.backend import ENDINGS_KEPT_S, Ending
from signaling.errors import Refused
from signaling.identity import Role, principal_of
from signaling.model import Agent, AgentState, Call, CallState, Offer, QueueConfig, QueueSnapshot
from signaling.routing import REQUEST_KEPT_S, known_queue, open_refusal, queue_snapshot, request_key
from signaling.strategies import get_strategy

from . import answers, invitations, keys, queries, scripts, specialists
from .dispatch import DISPATCH
from .replay import REPLAYED, replayed

_REFUSED = re.compile(r"^REFUSED (\S+) (.*?)(?: script: .*)?$", re.S)


class _CallBlob(msgspec.Struct, kw_only=True):
    """The parts of a call that never change, stored as one JSON field."""

    id: str
    session_id: str
    queue: str
    terminal_id: str
    enqueued_at: float
    context: dict[str, Any]


class _AgentBlob(msgspec.Struct, kw_only=True):
    id: str
    name: str
    department: str | None = None


def float_key(value: float) -> str:
    """16 hex digits that sort as bytes in the order of the floats (IEEE 754 trick)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", float(value)))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return f"{bits:016x}"


def _split(value: str) -> list[str]:
    return value.split(keys.SEP) if value else []


def _blocks(value: str) -> dict[str, float]:
    flat = _split(value)
    return {flat[i]: float(flat[i + 1]) for i in range(0, len(flat), 2)}


def _arg(offer: int | None) -> str:
    """An offer number as a script argument; "" = whichever offer is ringing."""
    return "" if offer is None else str(offer)


def _fields(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _snapshot(queue: str, now: float, reply: Sequence[Any]) -> QueueSnapshot:
    waiting, oldest, available, counts_flat, handle = reply
    counts = _fields(counts_flat)
    return queue_snapshot(
        queue, int(waiting), now - (float(oldest) if oldest else now), int(available),
        {s: int(counts.get(s.value, 0)) for s in AgentState},
        float(handle) if handle else None)


def call_from(flat: Sequence[str]) -> Call:
    h = _fields(flat)
    blob = msgspec.json.decode(h["blob"], type=_CallBlob)
    return Call(
        id=blob.id, session_id=blob.session_id, queue=blob.queue, terminal_id=blob.terminal_id,
        enqueued_at=blob.enqueued_at, priority=int(h["prio"]), state=CallState(h["state"]),
        ringing_agent=h.get("ring") or None, offer_number=int(h.get("offers") or 0),
        declined_by=_split(h.get("declined", "")),
        missed_by=_split(h.get("missed", "")), overflowed=h.get("ovf") == "1",
        blocked=_blocks(h.get("blk", "")),
        agents=_split(h.get("agents", "")),
        answered_at=float(h["ans"]) if h.get("ans") else None, context=blob.context,
        joins=h.get("joins") or None, target_agent=h.get("target") or None,
        transfer_from=h.get("xfer") or None, visitor=h.get("vis") or None,
    )


def agent_from(flat: Sequence[str]) -> Agent:
    h = _fields(flat)
    blob = msgspec.json.decode(h["blob"], type=_AgentBlob)
    return Agent(
        id=blob.id, name=blob.name, department=blob.department,
        skills={q: int(h["s:" + q]) for q in _split(h["sq"])},
        state=AgentState(h["state"]), connected=h["conn"] == "1", idle_since=float(h["idle"]),
        calls_answered=int(h["answered"]), missed_streak=int(h["streak"]),
        call_id=h.get("call") or None, last_offered=float(h.get("loff") or h["idle"]),
    )


class RedisRouter:
    """Routing state shared by every node through one Redis."""

    def __init__(self, redis: Redis, prefix: str, queues: Sequence[QueueConfig],
                 instance: str = "") -> None:
        self._redis = redis
        self._prefix = prefix
        self.instance = instance  # this node's: its answers are kept under it (`answered_by`)
        self._fenced_by = [instance] if instance else []  # the prelude's fence check (KEYS[1])
        self.queues = {q.id: q for q in queues}
        for q in queues:
            get_strategy(q.strategy)  # every strategy has its Lua key (strategies.py)
        self._scripts: dict[str, AsyncScript] = {
            name: redis.register_script(scripts.PRELUDE + _script(name, body))
            for name, body in _BODIES.items()
        }

    async def start(self) -> None:
        """Publish this node's queue configuration (every node has the same)."""
        args: list[str] = []
        for q in self.queues.values():
            args += [q.id, q.strategy, q.overflow_to or "", repr(float(q.decline_block_s)),
                     repr(float(q.ring_timeout_s))]
        await self._run("setup", 0.0, *args)

    async def _run(self, name: str, now: float, *args: Any) -> Any:
        if name in REPLAYED:  # the step's attempt: the same one again answers the same
            args = (*args, retry.attempt() or "")
        try:
            with waiting("redis " + name):
                reply = await self._scripts[name](keys=self._fenced_by, args=[
                    self._prefix, repr(float(now)), float_key(now), *args])
        except ResponseError as exc:
            match = _REFUSED.match(str(exc))
            if match is None:
                raise
            raise Refused(match.group(1), match.group(2)) from None
        if name not in _NUMBERING:
            return reply
        result, told = reply
        if told:
            order.took((str(told[i]), int(told[i + 1])) for i in range(0, len(told), 2))
        return result

    # ---- specialists -------------------------------------------------------------

    async def agent_join(self, agent: Agent, now: float) -> Agent:
        blob = msgspec.json.encode(_AgentBlob(id=agent.id, name=agent.name,
                                              department=agent.department))
        skills: list[str] = []
        for q, level in agent.skills.items():
            if q in self.queues:
                skills += [q, str(int(level))]
        flat = await self._run("agent_join", now, agent.id, blob,
                               "1" if agent.connected else "0", *skills)
        return agent_from(flat)

    async def agent_leave(self, agent_id: str) -> Agent | None:
        flat = await self._run("agent_leave", 0.0, agent_id)
        return agent_from(flat) if flat else None

    async def set_connected(self, agent_id: str, connected: bool) -> None:
        await self._run("set_connected", 0.0, agent_id, "1" if connected else "0")

    async def set_status(self, agent_id: str, status: AgentState, now: float) -> AgentState | None:
        old = await self._run("set_status", now, agent_id, AgentState(status).value)
        return AgentState(old) if old else None

    async def wrapup_done(self, agent_id: str, now: float) -> bool:
        return bool(await self._run("wrapup_done", now, agent_id))

    # ---- calls -----------------------------------------------------------------

    async def check_open(self, queue: str) -> str | None:
        config = known_queue(self.queues, queue)
        logged_in = (await self._redis.hget(keys.counts(self._prefix, queue), "logged_in")
                     if config.open else None)
        return open_refusal(config, lambda: int(logged_in or 0) > 0)

    async def enqueue(self, call: Call) -> int:
        known_queue(self.queues, call.queue)
        blob = msgspec.json.encode(_CallBlob(
            id=call.id, session_id=call.session_id, queue=call.queue,
            terminal_id=call.terminal_id, enqueued_at=call.enqueued_at, context=call.context))
        position = await self._run(
            "enqueue", call.enqueued_at, call.id, call.queue, call.terminal_id, blob,
            repr(float(call.enqueued_at)), float_key(call.enqueued_at), str(int(call.priority)),
            keys.SEP.join(call.declined_by), keys.SEP.join(call.missed_by),
            keys.SEP.join(call.agents), "1" if call.overflowed else "0",
            "" if call.answered_at is None else repr(float(call.answered_at)),
            call.joins or "", call.target_agent or "", call.transfer_from or "",
            keys.SEP.join(f"{a}{keys.SEP}{until!r}" for a, until in call.blocked.items()),
            request_key(call) or "", str(int(REQUEST_KEPT_S)))
        call.state = CallState.QUEUED
        return int(position)

    async def remove(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        return await self._maybe_call("remove", now, call_id, *self._kept(ending))

    async def overflow(self, call_id: str) -> bool:
        return bool(await self._run("overflow", 0.0, call_id))

    async def dispatch(self, now: float) -> list[Offer]:
        flat = await self._run("dispatch", now)
        return [
            Offer(call_id=flat[i], agent_id=flat[i + 1], queue=flat[i + 2],
                  via_overflow=flat[i + 3] == "1", offer=int(flat[i + 4]))
            for i in range(0, len(flat), 5)
        ]

    async def accept(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                     ) -> Call:
        return call_from(await self._run("accept", now, call_id, agent_id, _arg(offer),
                                         self.instance))

    async def answered_by(self, instance: str) -> list[tuple[str, str, float]]:
        """The live calls node `instance` answered last, each with that answer (specialist,
        time): a node killed between the accept and its append left them unlogged."""
        found: list[tuple[str, str, float]] = []
        for cid in await self._redis.smembers(keys.answering(self._prefix, instance)):
            acc = await self._redis.hget(keys.call(self._prefix, str(cid)), "acc")
            if acc:
                agent_id, _, at = str(acc).partition(keys.SEP)
                found.append((str(cid), agent_id, float(at)))
        return found

    async def forget_answers_of(self, instance: str) -> None:
        await self._redis.delete(keys.answering(self._prefix, instance))

    async def ended_by(self, instance: str) -> list[str]:
        """The calls node `instance` ended over its last `keys.ENDS_WATCHED_S`: killed
        between a routing end and its append, it left their sessions open."""
        return [str(cid) for cid in await self._redis.zrange(
            keys.recent_ends(self._prefix, instance), 0, -1)]

    async def forget_ends_of(self, instance: str) -> None:
        await self._redis.delete(keys.recent_ends(self._prefix, instance))

    async def handed_off_by(self, instance: str) -> list[tuple[str, float]]:
        """The calls node `instance` handed over to a phone over its last
        `keys.ENDS_WATCHED_S`, each with when: killed between routing and its append, it
        left their `handed_off` unlogged."""
        found: list[Any] = await self._redis.zrange(
            keys.recent_handoffs(self._prefix, instance), 0, -1, withscores=True)
        return [(str(cid), float(at)) for cid, at in found]

    async def forget_handoffs_of(self, instance: str) -> None:
        await self._redis.delete(keys.recent_handoffs(self._prefix, instance))

    def _kept(self, ending: Ending | None) -> tuple[str, ...]:
        """`finish`'s arguments in the Lua: the ending's JSON, how long it is kept, this
        node's instance and how long it watches its recent ends."""
        if ending is None:
            return "", "0", "", "0"
        return (msgspec.json.encode(ending).decode(), str(ENDINGS_KEPT_S), self.instance,
                str(keys.ENDS_WATCHED_S))

    async def decline(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                      ) -> Call:
        return call_from(await self._run("decline", now, call_id, agent_id, _arg(offer)))

    async def timeout(self, call_id: str, agent_id: str, now: float, offer: int | None = None
                      ) -> tuple[Call, bool] | None:
        result = await self._run("timeout", now, call_id, agent_id, _arg(offer))
        if not result:
            return None
        return call_from(result[1]), bool(result[0])

    async def withdraw(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return await self._maybe_call("withdraw", now, call_id, agent_id)

    async def hangup(self, call_id: str, now: float, ending: Ending | None = None
                     ) -> Call | None:
        return await self._maybe_call("hangup", now, call_id, *self._kept(ending))

    async def requeue(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return await self._maybe_call("requeue", now, call_id, agent_id)

    async def join(self, invitation_id: str, agent_id: str, now: float,
                   offer: int | None = None) -> Call:
        return call_from(await self._run("join", now, invitation_id, agent_id, _arg(offer)))

    async def leave(self, call_id: str, agent_id: str, now: float) -> Call | None:
        return await self._maybe_call("leave", now, call_id, agent_id)

    async def hand_off(self, call_id: str, terminal_id: str, visitor_id: str,
                       now: float = 0.0) -> Call:
        return call_from(await self._run("hand_off", now, call_id, terminal_id, visitor_id,
                                         self.instance, str(keys.ENDS_WATCHED_S)))

    async def _maybe_call(self, name: str, now: float, *args: str) -> Call | None:
        flat = await self._run(name, now, *args)
        return call_from(flat) if flat else None

    # ---- reading ---------------------------------------------------------------

    async def get_call(self, call_id: str) -> Call | None:
        flat = await self._redis.hgetall(keys.call(self._prefix, call_id))
        return call_from(_flatten(flat)) if flat else None

    async def knows(self, call_id: str) -> bool:
        """The call is live in the routing state (its hash is there)."""
        return bool(await self._redis.exists(keys.call(self._prefix, call_id)))

    def ending_logged(self, call_id: str) -> None:
        """Left to expire: the restart and the survivor only read endings of open sessions."""

    async def ending(self, call_id: str) -> Ending | None:
        kept = await self._redis.get(keys.ending(self._prefix, call_id))
        return None if kept is None else msgspec.json.decode(kept, type=Ending)

    async def get_agent(self, agent_id: str) -> Agent | None:
        flat = await self._redis.hgetall(keys.agent(self._prefix, agent_id))
        return agent_from(_flatten(flat)) if flat else None

    async def position(self, call_id: str) -> int | None:
        result = await self._run("position", 0.0, call_id)
        return int(result) if result else None

    async def waiting(self, queue: str) -> list[tuple[str, str]]:
        """The queue's callers, in order; their terminals' last numbers go to `order.saw`
        (a position sent from this read is a state as of them)."""
        flat = await self._run("waiting", 0.0, queue)
        callers = [(flat[i], principal_of(Role.VISITOR, flat[i + 2]) if flat[i + 2]
                    else principal_of(Role.TERMINAL, flat[i + 1]))
                   for i in range(0, len(flat), 4)]
        order.saw((principal, int(flat[i * 4 + 3])) for i, (_, principal) in enumerate(callers)
                  if flat[i * 4 + 3] is not None)
        return callers

    async def snapshot(self, queue: str, now: float) -> QueueSnapshot:
        return (await self.snapshots([queue], now))[0]

    async def snapshots(self, queues: Sequence[str], now: float) -> list[QueueSnapshot]:
        """One script for all of them: a `queue.status` costs one round trip, not one a
        queue."""
        replies = await self._run("snapshot", now, *queues)
        return [_snapshot(queue, now, reply) for queue, reply in zip(queues, replies, strict=True)]

    async def calls_of_terminal(self, terminal_id: str) -> list[Call]:
        return [call_from(flat) for flat in await self._run("calls_of_terminal", 0.0, terminal_id)]


def _script(name: str, body: str) -> str:
    if name in REPLAYED:
        return replayed(name, body)
    return scripts.transaction(body) if name in _NUMBERING else body


def _flatten(value: Any) -> list[str]:
    """HGETALL answers a dict; the decoders take the flat list Lua returns."""
    if isinstance(value, dict):
        return [x for pair in value.items() for x in pair]
    return list(value)


_BODIES = {
    "setup": scripts.SETUP, "agent_join": specialists.AGENT_JOIN,
    "agent_leave": specialists.AGENT_LEAVE, "set_connected": specialists.SET_CONNECTED,
    "set_status": specialists.SET_STATUS, "wrapup_done": specialists.WRAPUP_DONE,
    "enqueue": scripts.ENQUEUE, "remove": scripts.REMOVE, "overflow": scripts.OVERFLOW,
    "dispatch": DISPATCH, "accept": answers.ACCEPT, "decline": answers.DECLINE,
    "timeout": answers.TIMEOUT, "withdraw": answers.WITHDRAW, "hangup": scripts.HANGUP,
    "requeue": scripts.REQUEUE, "position": queries.POSITION, "waiting": queries.WAITING,
    "snapshot": queries.SNAPSHOT, "calls_of_terminal": queries.CALLS_OF_TERMINAL,
    "join": invitations.JOIN, "leave": invitations.LEAVE, "hand_off": scripts.HAND_OFF,
}
# The transactions that tell someone of what they decided: they number its messages.
_NUMBERING = frozenset({
    "set_status", "wrapup_done", "enqueue", "remove", "dispatch", "accept", "decline",
    "timeout", "withdraw", "hangup", "requeue", "join", "leave", "hand_off"})
