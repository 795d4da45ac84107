"""The bench day's load: one process drives many kiosks and desks over `/ws`.

Each worker process gets its share of terminals, specialists and visits. Kiosks play
their visits by `VISIT_STEPS[kind]` (bench.day_plan.VISITS lists the kinds and their
shares); desks answer, decline or let ring out what they are offered, wrap up, take
breaks and lunch, and start joint actions on deregistration calls (market regulation
signs in the call, a tax specialist over HTTP). Everything seen is written to a
ledger (JSON lines) that the parent holds against the session log.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import day_visits
from bench.day_line import BACK, Line, Message
from bench.day_plan import Clock, Visit, sampled

MEDIA_TALK_MIN_S = 8.0  # real seconds a sampled call talks at least: its media set-up is not
# compressed (goal-size day: the recorder's answer p99 3.5 s; at 3 s a segment closed empty)

REPLY_S = 600.0  # a kiosk waits for an answer as long as the day lasts (the drain cuts it)


@dataclass
class Work:
    """What one load process is given."""

    urls: list[str]
    terminals: list[tuple[str, str]]  # (id, token)
    specialists: list[tuple[str, str, str]]  # (id, token, department)
    visits: list[Visit]
    ledger: Path
    speed: float
    hours: float
    seed: int
    media_share: float
    signers: list[str] = field(default_factory=list)  # tax specialists' tokens (HTTP)
    slot: float = 0.0  # the appointment slot's start (epoch; bench.day_hours)
    window: tuple[float, float] = (0.0, 0.0)  # its arrival window: early_s, late_s
    closure: tuple[float, float] | None = None  # the queues' lunch closure (epoch)
    name: str = "load"  # the process's name in the report (its latencies, its loop's lag)
    nice: int = 0  # added to the process's niceness: the load yields the CPU to the servers


class Ledger:
    def __init__(self, path: Path, process: str = "load") -> None:
        self.rows: list[dict[str, Any]] = []
        self.path, self.process = path, process

    def add(self, kind: str, **data: Any) -> None:
        self.rows.append({"kind": kind, "t": time.time(), **data})

    def latency(self, what: str, started: float) -> None:
        self.add("latency", what=what, ms=(time.time() - started) * 1000,
                 process=self.process)

    def save(self) -> None:
        self.path.write_text("".join(json.dumps(r) + "\n" for r in self.rows))


class Kiosk:
    """A terminal: idle-connected all day, one visit at a time."""

    def __init__(self, tid: str, line: Line, ledger: Ledger) -> None:
        self.id, self.line, self.ledger = tid, line, ledger
        self.clock = Clock(time.time(), 1.0, 0.0)  # the day's, once it starts
        self.lock = asyncio.Lock()
        self.media_share = 0.0

    async def visit(self, v: Visit) -> None:
        async with self.lock:
            while not self.line.inbox.empty():  # what the last visit left: not this one's
                self.line.inbox.get_nowait()
            record: dict[str, Any] = {"terminal": self.id, "queue": v.queue, "visit": v.kind,
                                      "media": False, "requested": time.time()}
            try:
                await VISIT_STEPS[v.kind](self, v, record)
            except asyncio.CancelledError:
                record["cut"] = True  # closing time came first: the ledger has no end
                raise
            except Exception as exc:  # the load's own failure: named beside the call
                record["error"] = repr(exc)
                raise
            finally:
                if self.line.media is not None:
                    record["links"] = await self.line.media.close()
                    self.line.media = None
                self.ledger.add("visit", **record)

    def on(self, line: Line) -> Kiosk:
        """The same visitor on another line (the phone a call was handed over to)."""
        other = Kiosk(self.id, line, self.ledger)
        other.clock, other.media_share = self.clock, self.media_share
        return other

    async def request(self, v: Visit, record: dict[str, Any], enterprise: Message | None,
                      appointment: str | None = None) -> bool:
        """Ask for a call; False when it was refused or never answered."""
        msg: Message = {"type": "call.request", "queue": v.queue}
        if enterprise:
            msg["enterprise"] = enterprise
        if appointment:
            msg["appointment"] = appointment
        msg["request_id"] = secrets.token_hex(8)
        started = time.time()
        reply = await self._ask(msg, record)
        if reply is not None and reply["type"] == "call.connected":
            self.line.inbox.put_nowait(reply)  # answered before the reply came: `wait_answer`
        elif reply is None or reply["type"] != "call.queued":
            record["outcome"] = "rejected" if reply else "no_reply"
            record["reply"] = reply
            if reply is not None and reply.get("reason") == "closed":
                record["closed_opens_at"] = reply.get("opens_at")
            return False
        if not record.get("resent"):  # not the socket's loss and the line's backoff
            self.ledger.latency("request", started)
        record["call_id"] = reply["call_id"]
        return True

    async def _ask(self, msg: Message, record: dict[str, Any]) -> Message | None:
        """Its reply, as the kiosk page does it: a request the socket lost before any
        reply came is sent again once the line is back, with the same `request_id` (the
        service answers with the call it made, if any). `resent` counts them: each may have
        left a session of its own, closed (`rejected call_in_progress`, or `interrupted`
        with a node killed while logging it). After one is sent again, `call_in_progress`
        or `appointment_used` is an earlier send's work seen first: its reply follows."""
        replies = {"call.queued", "call.rejected", "error", "call.connected"}
        since = self.line.welcomes
        await self.line.send(msg)
        while True:
            reply = await self.line.recv_or_back(replies, REPLY_S, since)
            if reply is not None and reply["type"] == BACK:
                since = self.line.welcomes
                record["resent"] = record.get("resent", 0) + 1
                await self.line.send(msg)
            elif reply is not None and record.get("resent") and reply.get("code") in (
                    "call_in_progress", "appointment_used"):
                continue
            elif reply is not None and reply.get("refused") not in (None, msg["type"]):
                continue  # another message's refusal (a hang-up sent again, on resume)
            elif reply is not None and reply.get("request_id") not in (None, msg["request_id"]):
                continue  # an earlier visit's request, a copy read late (`request_done`)
            else:
                return reply

    async def wait_answer(self, v: Visit, record: dict[str, Any]) -> bool:
        """Until connected (True) or ended; past the visitor's patience, cancel."""
        patience = self.clock.real(v.patience_s)
        drop_at = time.monotonic() + patience * random.random() if v.drop_while == "waiting" \
            else None
        until = time.monotonic() + patience
        while True:
            left = until - time.monotonic()
            if drop_at is not None:
                left = min(left, drop_at - time.monotonic())
            msg = await self.line.recv({"call.connected", "call.ended"}, max(0.0, left))
            if msg is None and drop_at is not None and time.monotonic() >= drop_at:
                drop_at = None
                record["dropped"] = "waiting"
                await self.line.drop()
                continue
            if msg is None:
                record["cancelled"] = time.time()
                await self.line.send({"type": "call.cancel", "call_id": record["call_id"]})
                end = await self.line.recv({"call.ended", "call.connected"}, REPLY_S)
                if end is not None and end["type"] == "call.connected":
                    msg = end  # answered as the visitor gave up: the call goes on
                else:
                    record["outcome"] = "cancelled" if end else "no_reply"
                    return False
            if msg["type"] == "call.ended":
                record["outcome"], record["reason"] = "ended_unanswered", msg.get("reason")
                return False
            record["session_id"] = msg["session_id"]
            record["answered"] = time.time()
            record["recording"] = msg.get("recording", False)
            record["specialists"] = [p["id"] for p in msg["participants"]
                                     if p["role"] == "specialist"]
            record["media"] = sampled(msg["call_id"], self.media_share)
            if record["media"]:
                await self.line.media_for(msg["call_id"], msg["participants"])
            return True

    async def talk(self, v: Visit, record: dict[str, Any]) -> None:
        talk = self.clock.real(v.talk_s)
        if record["media"]:  # compressed, a short talk ends before the media is up at all
            talk = max(talk, MEDIA_TALK_MIN_S)
        if v.drop_while == "talking":
            await asyncio.sleep(talk / 2)
            record["dropped"] = "talking"
            await self.line.drop()
            talk /= 2
        end = await self.line.recv({"call.ended"}, talk)
        if end is None:
            started = time.time()
            hangup = {"type": "call.hangup", "call_id": record["call_id"]}
            await self.line.send(hangup)
            end = await self.line.recv({"call.ended", "call.connected", "error"}, REPLY_S)
            while end is not None and end["type"] != "call.ended":
                if end["type"] == "call.connected" or end.get("code") == "internal":
                    await asyncio.sleep(0.5)  # it died with its node, or failed: press again
                    await self.line.send(hangup)
                end = await self.line.recv({"call.ended", "call.connected", "error"}, REPLY_S)
            if end is not None:
                self.ledger.latency("hangup", started)
        record["outcome"] = "served" if end else "no_reply"
        record["reason"] = end.get("reason") if end else None


async def _served(k: Kiosk, v: Visit, record: dict[str, Any]) -> None:
    if await k.request(v, record, None) and await k.wait_answer(v, record):
        await k.talk(v, record)


async def _joint(k: Kiosk, v: Visit, record: dict[str, Any]) -> None:
    enterprise = day_visits.enterprise("嘉定个体户")
    if await k.request(v, record, enterprise) and await k.wait_answer(v, record):
        await k.talk(v, record)


VISIT_STEPS: dict[str, Callable[[Kiosk, Visit, dict[str, Any]], Awaitable[None]]] = {
    "served": _served, "impatient": _served, "flaky": _served, "joint": _joint,
    "appointment": day_visits.appointment, "handoff": day_visits.handoff,
    "form": day_visits.form}
"""How each kind of bench.day_plan.VISITS is played (its share is set there)."""
