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
import contextlib
import json
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from bench import day_visits
from bench.day_line import BACK, Closed, Line, Message
from bench.day_plan import (
    BREAK_MEAN_S,
    BREAK_P,
    DECLINE_P,
    FORM_ENTERPRISE,
    RING_OUT_P,
    WRAPUP_S,
    Clock,
    Visit,
    sampled,
)

MEDIA_TALK_MIN_S = 8.0  # real seconds a sampled call talks at least: its media set-up is not
# compressed (goal-size day: the recorder's answer p99 3.5 s; at 3 s a segment closed empty)

DEREG = "sole_proprietor_deregistration"
REPLY_S = 600.0  # a kiosk waits for an answer as long as the day lasts (the drain cuts it)
ASK_AGAIN_S = 5.0  # a desk not available this long after asking asks again (real s)


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


async def _until_closed(work: Awaitable[None]) -> None:
    """A desk's side task (a break, a wrap-up) that the end of the day may cut short."""
    with contextlib.suppress(Closed):
        await work


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


class Desk:
    """A specialist at their desk for the whole day."""

    def __init__(self, sid: str, dept: str, line: Line, ledger: Ledger,
                 http: aiohttp.ClientSession, signers: list[str],
                 lunch: tuple[float, float] | None = None) -> None:
        self.id, self.dept, self.line, self.ledger = sid, dept, line, ledger
        self.clock = Clock(time.time(), 1.0, 0.0)  # the day's, once it starts
        self.http, self.signers = http, signers
        self.accepted: dict[str, float] = {}
        self.offers: dict[str, Message] = {}  # accepted offers by call id
        self.media_share = 0.0
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_break = False
        self.status = "offline"  # as the server last said
        self.asked = 0.0  # when `available` was last asked for
        self.counts = {"declined": 0, "rung_out": 0, "breaks": 0, "forms_presented": 0}
        self.lunch = lunch  # the queues' closure (epoch): away over it
        self.form_calls: set[str] = set()  # calls whose action's form this desk presents

    async def run(self, until: float) -> None:
        await self._available()
        while time.time() < until:
            msg = await self.line.recv({"call.offered", "call.connected", "call.ended",
                                        "action.updated", "agent.status"}, 1.0)
            now = time.time()
            if self.lunch is not None and self.lunch[0] <= now < self.lunch[1] and \
                    not self.on_break and not self.accepted:
                self._spawn(self._pause(self.lunch[1] - now))
            if msg is not None:
                await self._on(msg)
            if self.status in ("offline", "away") and not self.on_break and \
                    time.time() - self.asked > ASK_AGAIN_S:
                await self._available()  # like a person whose click did not take
        self.ledger.add("desk", specialist=self.id, **self.counts)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(_until_closed(work))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _on_offer(self, msg: Message) -> None:
        draw = random.random()
        if draw < DECLINE_P:
            self.counts["declined"] += 1
            await self.line.send({"type": "call.decline", "call_id": msg["call_id"],
                                  "offer": msg["offer"]})
        elif draw < DECLINE_P + RING_OUT_P:
            self.counts["rung_out"] += 1
        else:
            self.accepted[msg["call_id"]] = time.time()
            self.offers[msg["call_id"]] = msg
            await self.line.send({"type": "call.accept", "call_id": msg["call_id"],
                                  "offer": msg["offer"]})

    async def _on(self, msg: Message) -> None:
        kind = msg["type"]
        if kind == "call.offered":
            await self._on_offer(msg)
        elif kind == "call.connected":
            started = self.accepted.get(msg["call_id"])
            if started is not None and not msg.get("resumed"):
                self.ledger.latency("accept", started)
            self.ledger.add("answer", specialist=self.id, call_id=msg["call_id"],
                            session_id=msg["session_id"], resumed=msg.get("resumed", False))
            if sampled(msg["call_id"], self.media_share):
                await self.line.media_for(msg["call_id"], msg["participants"])
            offer = self.offers.get(msg["call_id"], {})
            if (offer.get("enterprise") or {}).get("name") == FORM_ENTERPRISE:
                self.form_calls.add(msg["call_id"])
            if offer.get("enterprise") and not msg.get("resumed"):
                await self.line.send({"type": "action.start", "call_id": msg["call_id"],
                                      "action": DEREG, "enterprise": offer["enterprise"]})
        elif kind == "call.ended":
            self.accepted.pop(msg["call_id"], None)
            self.offers.pop(msg["call_id"], None)
            self.form_calls.discard(msg["call_id"])
            if self.line.media is not None:
                self.ledger.add("media", call_id=msg["call_id"], party=self.id,
                                links=await self.line.media.close())
                self.line.media = None
            await self.line.send({"type": "session.wrapup", "session_id": msg["session_id"],
                                  "outcome": "resolved"})
            self._spawn(self._wrap_up())
        elif kind == "action.updated":
            await self._on_action(msg)
        elif kind == "agent.status":
            self.status = msg["status"]
            if self.status == "away" and not self.on_break:  # set away (missed offers)
                self.asked = time.time() - ASK_AGAIN_S + self.clock.real(60)  # back in 1 min

    async def _on_action(self, msg: Message) -> None:
        steps = {s["id"]: s for s in msg.get("steps", [])}
        if msg["state"] == "open" and msg.get("call_id") in self.form_calls:
            self.form_calls.discard(msg["call_id"])
            self.counts["forms_presented"] += 1
            await self.line.send({"type": "form.present", "call_id": msg["call_id"],
                                  "action_id": msg["action_id"]})
        step = steps.get("licence_cancelled")
        if msg["state"] == "open" and step is not None and step["signed_by"] is None:
            await self.line.send({"type": "action.sign", "action_id": msg["action_id"],
                                  "step": "licence_cancelled"})
        elif msg["state"] == "open" and step is not None and step["signed_by"] == self.id:
            self._spawn(self._tax_signs(msg["action_id"], msg.get("session_id")))
        elif msg["state"] == "completed":
            self.ledger.add("action", action_id=msg["action_id"],
                            session_id=msg.get("session_id"), state="completed")

    async def _tax_signs(self, action_id: str, session_id: str | None) -> None:
        """The tax department confirms clearance from its own desk (over HTTP)."""
        token = random.choice(self.signers)
        url = self.line.urls[0] + f"/api/actions/{action_id}/sign"
        for attempt in range(5):
            try:
                async with self.http.post(url if attempt % 2 == 0 else url.replace(
                        self.line.urls[0], self.line.urls[-1]),
                        headers={"Authorization": f"Bearer {token}"},
                        json={"step": "tax_clearance_confirmed"}) as resp:
                    if resp.status == 200:
                        self.ledger.add("action", action_id=action_id, session_id=session_id,
                                        state="signed_by_tax")
                        return
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(1)
        self.ledger.add("action", action_id=action_id, session_id=session_id,
                        state="tax_sign_failed")

    async def _wrap_up(self) -> None:
        await asyncio.sleep(self.clock.real(WRAPUP_S) * random.uniform(0.5, 1.0))
        await self.line.send({"type": "agent.wrapup_done"})
        if random.random() < BREAK_P:
            self.counts["breaks"] += 1
            await self._pause(self.clock.real(random.expovariate(1 / BREAK_MEAN_S)))

    async def _pause(self, seconds: float) -> None:
        self.on_break = True
        await self.line.send({"type": "agent.status", "status": "away"})
        await asyncio.sleep(max(0.0, seconds))
        self.on_break = False
        await self._available()

    async def _available(self) -> None:
        self.asked = time.time()
        await self.line.send({"type": "agent.status", "status": "available"})
