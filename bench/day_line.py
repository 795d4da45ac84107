"""One kiosk's or desk's signalling socket for the bench day: resumed when it drops, and
the media it sends to the session's recorder.

A `Line` keeps one `/ws` connection: `hello` (with the last `resume` token after a
loss), then a reader that hands `rtc.*` and participant changes to the `Media` of the
current call and everything else to `recv`. A closed socket (node killed, or `drop()`,
the flaky park network) is opened again on the next node of the list, as a load
balancer would, with a short backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from tests.rtc_peers import RtcLink

PING_S = 10.0  # like the kiosk: a silent socket is closed as idle by the server
BACKOFF_S = (0.2, 2.0)  # the kiosk's reconnect backoff, shortened for a compressed day
HELLO_TIMEOUT_S = 20.0
EARLY_KEPT = 8
ENDED_KEPT = 16  # as the pages' SignalingClient
RESEND_S = (3.0, 4.0)  # the pages' `OFFER_RESEND_MS` (peer.js: 4, 8, 16 s), shortened to
# fit the day's talks (`MEDIA_TALK_MIN_S`): an offer or its answer lost on the way is asked
# for again within the talk; not sooner (the goal-size day's answers: p99 3.5 s, and at 1 s
# 286 of 644 offers were sent twice)
MEDIA_EVENTS = frozenset({"rtc.description", "rtc.candidate", "participant.joined",
                          "participant.left"})
Message = dict[str, Any]
BACK = "line.back"  # not a protocol message: the line said hello again (`recv_or_back`)


def caller_told(msg: Message) -> bool:
    """A `call.connected` to the call's caller (the kiosk or its phone), who never joins an
    ended call again."""
    return any(p["id"] == msg.get("you") and p["role"] in ("terminal", "visitor")
               for p in msg.get("participants", []))


class Closed(Exception):
    """The line is shut down for good (the day is over)."""


class Down(Exception):
    """The line's socket is down and the reader, which brings it up again, sent."""


class Media:
    """The tracks one party of a sampled call sends to the session's recorder."""

    def __init__(self, line: Line, call_id: str) -> None:
        self.line, self.call_id = line, call_id
        self.links: dict[str, RtcLink] = {}
        self.failures = 0
        self.trace: list[Message] = []  # per link, for the day's inquiry (`bench.day_inquiry`)
        self._traced: dict[str, Message] = {}
        self._resends: dict[str, asyncio.Task[None]] = {}
        self.segments: dict[str, int | None] = {}  # the segment each link was made for

    async def offer_to(self, participants: list[Message]) -> None:
        for party in participants:
            if party["role"] != "recorder":
                continue
            if party["id"] in self.links and self._new_segment(party):
                await self._drop(party["id"])  # the recorder reconnected: the link is dead
            if party["id"] not in self.links:
                self.segments[party["id"]] = party.get("segment")
                await self._offer(party["id"])
        early = [msg for msg in self.line.early if msg["call_id"] == self.call_id]
        self.line.early.clear()
        for msg in early:  # the recorder changed before this party heard it connected
            await self.handle(msg)

    async def resumed(self, participants: list[Message]) -> None:
        """A resumed `call.connected`: while the socket was away the recorder may have
        changed (its `participant.left` / `joined` never came) or its answer been lost:
        drop the gone, send an unanswered offer again as it was, offer to the listed ones.
        (A new offer in its place was answered anew, and the answer to the first, come
        late, was taken for it: the party never connected, its segments stayed empty.)"""
        listed = {p["id"]: p for p in participants if p["role"] == "recorder"}
        for gone in [r for r in self.links if r not in listed or self._new_segment(listed[r])]:
            await self._drop(gone)  # replaced, or reconnected (a new segment) meanwhile
        for recorder, link in list(self.links.items()):
            if link.pc.signalingState == "have-local-offer":
                await self._send_offer(recorder, link)  # the recorder answers it again
        await self.offer_to(participants)

    def _new_segment(self, party: Message) -> bool:
        """The recorder is listed with another segment than its link was made for (as the
        pages' `newSegment`, web/static/js/call.js)."""
        had = self.segments.get(party["id"])
        return party.get("segment") is not None and had is not None and \
            party["segment"] != had

    async def _offer(self, recorder: str) -> None:
        servers = [RTCIceServer(**s) for s in self.line.welcome.get("ice_servers", [])]
        link = self.links[recorder] = RtcLink(recorder, RTCConfiguration(iceServers=servers))
        self._traced[recorder] = {"recorder": recorder, "offered": time.time(), "sent": 0,
                                  "answered": None}
        self.trace.append(self._traced[recorder])
        await link.pc.setLocalDescription(await link.pc.createOffer())
        await self._send_offer(recorder, link)

    async def _send_offer(self, recorder: str, link: RtcLink) -> None:
        self._traced[recorder]["sent"] += 1
        local = link.pc.localDescription  # candidates gathered: in the SDP, no trickle
        await self.line.send({"type": "rtc.description", "call_id": self.call_id,
                              "to": recorder, "description": {"type": local.type,
                                                              "sdp": local.sdp}})
        if recorder not in self._resends:
            self._resends[recorder] = asyncio.get_running_loop().create_task(
                self._resend_unanswered(recorder, link))

    async def _resend_unanswered(self, recorder: str, link: RtcLink) -> None:
        """As the pages do: the same offer again while no answer came (`RESEND_S`)."""
        for attempt in itertools.count():
            await asyncio.sleep(RESEND_S[min(attempt, len(RESEND_S) - 1)])
            if self.links.get(recorder) is not link or (
                    link.pc.signalingState != "have-local-offer"):
                return
            with contextlib.suppress(Closed):
                await self._send_offer(recorder, link)

    async def handle(self, msg: Message) -> None:
        kind = msg["type"]
        if kind == "participant.joined":
            await self.offer_to([msg["participant"]])
        elif kind == "participant.left" and msg["participant"] in self.links:
            await self._drop(msg["participant"])
        elif (kind == "rtc.description" and msg["from"] in self.links
              and self.links[msg["from"]].pc.signalingState == "have-local-offer"):
            # (an offer sent again is answered again: the second copy finds it answered)
            self._traced[msg["from"]]["answered"] = time.time()
            await self.links[msg["from"]].pc.setRemoteDescription(
                RTCSessionDescription(**msg["description"]))
        elif kind == "rtc.candidate" and msg["from"] in self.links and msg["candidate"]:
            data = msg["candidate"]
            candidate = candidate_from_sdp(data["candidate"].removeprefix("candidate:"))
            candidate.sdpMid, candidate.sdpMLineIndex = data.get("sdpMid"), data.get(
                "sdpMLineIndex")
            await self.links[msg["from"]].pc.addIceCandidate(candidate)

    def _stop_resending(self, recorder: str) -> None:
        task = self._resends.pop(recorder, None)
        if task is not None:
            task.cancel()

    async def _drop(self, recorder: str) -> None:
        self._stop_resending(recorder)
        link = self.links.pop(recorder)
        self._traced[recorder].update(ice=link.pc.iceConnectionState, left=time.time())
        await link.close()

    async def close(self) -> list[Message]:
        """Close every link; what each went through (offers, answer, ICE, frames sent)."""
        links, self.links = list(self.links.items()), {}
        for recorder, link in links:
            self._stop_resending(recorder)
            self._traced[recorder].update(ice=link.pc.iceConnectionState, closed=time.time())
            await link.close()
        return self.trace


class Line:
    """A principal's signalling connection that survives drops (see module doc)."""

    def __init__(self, http: aiohttp.ClientSession, urls: list[str], token: str,
                 home: int, on_reconnect: Callable[[], None] | None = None,
                 refusable: bool = False) -> None:
        self.http, self.urls, self.token, self.home = http, urls, token, home
        self.refusable = refusable  # a first hello refused (a used ticket) is final
        self.refused: Message | None = None
        self.welcome: Message = {}
        self.media: Media | None = None
        self.early: list[Message] = []  # participant changes heard before `media` began
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.reconnects = 0
        self.welcomes = 0  # welcomes so far: a request sent before the last may be lost
        self._welcomed = asyncio.Event()  # set (and replaced) at each welcome
        self.on_reconnect = on_reconnect
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._up = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._pinger: asyncio.Task[None] | None = None
        self.current: str | None = None  # the call it is in or waits for (`_heard`)
        self._ended: dict[str, None] = {}  # the last `ENDED_KEPT` calls heard ended

    def _heard(self, msg: Message) -> bool:
        """As the pages' SignalingClient: keep the call this line is in (named in a
        resuming hello: its end, if it ended meanwhile, is told on resume) and drop an end
        told again, or a `call.connected` of a call heard ended: a re-sync's, or a caller's
        (the answer a cancel overtook: the call is over for good)."""
        kind, call_id = msg["type"], msg.get("call_id")
        rejoined = kind == "call.connected" and not msg.get("resumed") and not caller_told(msg)
        if rejoined:
            self._ended.pop(call_id, None)  # a specialist joined anew (invited again)
        if call_id in self._ended and kind in ("call.ended", "call.connected"):
            return False
        if kind == "call.ended":
            self._ended[call_id] = None
            if len(self._ended) > ENDED_KEPT:
                del self._ended[next(iter(self._ended))]
            if call_id == self.current:
                self.current = None
        elif kind in ("call.queued", "call.connected"):
            self.current = call_id
        elif kind == "call.handed_off" and call_id == self.current:
            self.current = None
        return True

    async def open(self) -> None:
        await self._connect()
        self._task = asyncio.create_task(self._run())
        self._pinger = asyncio.create_task(self._ping())

    async def _ping(self) -> None:
        while not self._closing:
            await asyncio.sleep(PING_S * random.uniform(0.8, 1.0))
            with contextlib.suppress(Closed):
                await self.send({"type": "ping"})

    async def _connect(self) -> None:
        delay = BACKOFF_S[0]
        attempt = 0
        while not self._closing:
            url = self.urls[(self.home + attempt) % len(self.urls)] + "/ws"
            attempt += 1
            try:
                ws = await self.http.ws_connect(url, heartbeat=None, max_msg_size=0)
                hello: Message = {"type": "hello", "token": self.token}
                if self.welcome.get("resume"):
                    hello["resume"] = self.welcome["resume"]
                    if self.current:
                        hello["call_id"] = self.current
                await ws.send_str(json.dumps(hello))
                frame = await ws.receive(timeout=HELLO_TIMEOUT_S)
                msg = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else {}
                if msg.get("type") == "welcome":
                    self.welcome, self._ws = msg, ws
                    self.welcomes += 1
                    self._welcomed.set()
                    self._welcomed = asyncio.Event()
                    self._up.set()
                    return
                await ws.close()
                if self.refusable and not self.welcome and msg.get("type") == "error":
                    self.refused = msg
                    raise Closed
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                pass
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, BACKOFF_S[1])
        raise Closed

    async def _run(self) -> None:
        """Read until the socket closes, then connect again (resume) unless shutting down."""
        while not self._closing:
            ws = self._ws
            assert ws is not None
            with contextlib.suppress(aiohttp.ClientError, OSError, ConnectionResetError):
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        break
                    msg = json.loads(frame.data)
                    if not self._heard(msg):
                        continue
                    if (msg["type"] == "call.connected" and msg.get("resumed")
                            and self.media is not None and self.media.call_id == msg["call_id"]):
                        with contextlib.suppress(Exception):  # a failed link: counted
                            await self.media.resumed(msg["participants"])
                    if msg["type"] in MEDIA_EVENTS:
                        current = self.media is not None and \
                            self.media.call_id == msg.get("call_id")
                        if not current and msg["type"].startswith("participant."):
                            # Unnumbered, it can overtake its call's `call.connected` on
                            # the bus: kept until the call's media starts. (Only the
                            # current call's go to its media, as the web client's do.)
                            self.early = [*self.early[-EARLY_KEPT + 1:], msg]
                        if current and self.media is not None:
                            with contextlib.suppress(Exception):  # a failed link: counted
                                await self.media.handle(msg)
                        continue
                    await self.inbox.put(msg)
            self._up.clear()
            if self._closing:
                return
            self.reconnects += 1
            with contextlib.suppress(Closed):
                await self._connect()
            if self.on_reconnect is not None:
                self.on_reconnect()

    async def media_for(self, call_id: str, participants: list[Message]) -> None:
        """Send media in this call (connected now, or again). As in the web client, a call
        takes the last one's place: a desk told of a call after its end (a resume that
        crossed the hang-up) kept that call's media and sent none in its next call."""
        if self.media is not None and self.media.call_id == call_id:
            return  # resumed: `Media.resumed` (`_run`)
        if self.media is not None:
            await self.media.close()
        self.media = Media(self, call_id)
        await self.media.offer_to(participants)

    async def send(self, msg: Message) -> None:
        """Send once the line is up (a message sent into a dying socket is sent again).
        The reader itself (a party's media answering a participant change) never waits:
        it is what brings the line up again, so waiting there hung the load process for
        good (a goal-size day's desk whose socket was closed to re-sync as its recorder
        joined). Its message is dropped (`Down`), as the pages drop what they send while
        disconnected; the resumed call's unanswered offers go again (`Media.resumed`)."""
        reader = self._task is not None and asyncio.current_task() is self._task
        while not self._closing:
            if reader and not self._up.is_set():
                raise Down
            await self._up.wait()
            ws = self._ws
            assert ws is not None
            try:
                await ws.send_str(json.dumps(msg))
                return
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                self._up.clear()
                await asyncio.sleep(0.05)
        raise Closed

    async def recv(self, types: set[str], timeout: float) -> Message | None:
        """The next message of one of `types` within `timeout` (None: none came); other
        messages (queue figures, positions) are passed over."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = await asyncio.wait_for(self.inbox.get(), left)
            except TimeoutError:
                return None
            if msg["type"] in types:
                return msg

    async def recv_or_back(self, types: set[str], timeout: float, since: int
                           ) -> Message | None:
        """As `recv`, but a welcome after the `since`-th (the socket came back, perhaps
        without what was sent into the old one) ends the wait: `{"type": BACK}`."""
        deadline = time.monotonic() + timeout
        while self.welcomes <= since:
            welcomed = asyncio.ensure_future(self._welcomed.wait())
            got = asyncio.ensure_future(self.recv(types, max(0.0, deadline - time.monotonic())))
            try:
                await asyncio.wait((welcomed, got), return_when=asyncio.FIRST_COMPLETED)
            finally:  # cancelled too (closing time): no reader left behind on the inbox
                welcomed.cancel()
                if not got.done():
                    got.cancel()
                    await asyncio.gather(got, return_exceptions=True)
            if not got.cancelled():
                return got.result()
        return {"type": BACK}

    async def drop(self) -> None:
        """The park's network blips: the socket closes; the reader connects again."""
        ws = self._ws
        if ws is not None:
            await ws.close()

    async def close(self) -> None:
        self._closing = True
        self._up.set()
        if self.media is not None:
            await self.media.close()
        if self._ws is not None:
            await self._ws.close()
        for task in (self._task, self._pinger):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
