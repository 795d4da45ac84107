"""A bench day's specialist at their desk: answers, declines or lets ring out what they
are offered, wraps up, takes breaks and lunch, and runs the joint actions of
deregistration calls (market regulation signs in the call, a tax specialist over HTTP).
What the desk sees goes into the load process's ledger (bench.day_load.Ledger)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable

import aiohttp

from bench.day_line import Closed, Line, Message
from bench.day_load import Ledger
from bench.day_plan import (
    BREAK_MEAN_S,
    BREAK_P,
    DECLINE_P,
    FORM_ENTERPRISE,
    RING_OUT_P,
    WRAPUP_S,
    Clock,
    sampled,
)

DEREG = "sole_proprietor_deregistration"
ASK_AGAIN_S = 5.0  # a desk not available this long after asking asks again (real s)


async def _until_closed(work: Awaitable[None]) -> None:
    """A desk's side task (a break, a wrap-up) that the end of the day may cut short."""
    with contextlib.suppress(Closed):
        await work



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
