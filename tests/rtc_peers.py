"""Real WebRTC participants for tests and benchmarks: aiortc behind the `/ws` protocol.

An `RtcClient` is one signalling connection (terminal or specialist) that holds
one `RTCPeerConnection` per remote participant, keyed by the remote's
participant id, so two-party, three-party and recording tests share it. It
trickles ICE like a browser does: candidates are stripped from the SDP and
sent one by one as `rtc.candidate`, then `null` for end-of-candidates, so a
call only connects if the server relays both kinds of `rtc.*` message.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fractions
import functools
import json
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import aioice.ice
from aiohttp.test_utils import TestClient
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp, candidate_to_sdp
from av import AudioFrame, VideoFrame

WAIT_S = 20.0  # generous: media set-up on a busy 2-core machine
VIDEO_FPS = 30  # aiortc's VideoStreamTrack pace
VIDEO_SIZE = (160, 120)  # small frames keep VP8 cheap on a 2-core machine
TONE_HZ = 440
SAMPLE_RATE = 48_000
AUDIO_PTIME = 0.020
TRICKLED = ("a=candidate:", "a=end-of-candidates")  # SDP lines sent as rtc.candidate instead


def use_loopback_when_alone() -> None:
    """Make aioice offer 127.0.0.1 on a host whose only interface is loopback.

    aioice never gathers loopback addresses, so two peers in a network namespace
    with only `lo` would find no candidate pair. Idempotent, process-wide.
    """
    original = aioice.ice.get_host_addresses
    if getattr(original, "loopback_fallback", False):
        return

    def host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return found or (["127.0.0.1"] if use_ipv4 else [])

    host_addresses.loopback_fallback = True  # type: ignore[attr-defined]
    aioice.ice.get_host_addresses = host_addresses


class MovingBarTrack(VideoStreamTrack):
    """Synthetic camera: a white bar sweeping over grey, so every frame differs."""

    def __init__(self, size: tuple[int, int] = VIDEO_SIZE) -> None:
        super().__init__()
        self.width, self.height = size
        self.sent = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(width=self.width, height=self.height, format="yuv420p")
        luma, *chroma = frame.planes
        x0 = (self.sent * 4) % luma.width
        row = bytearray(b"\x50" * luma.line_size)
        row[x0:x0 + 16] = b"\xeb" * len(row[x0:x0 + 16])
        luma.update(bytes(row) * luma.height)
        for plane in chroma:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = pts
        frame.time_base = time_base
        self.sent += 1
        return frame


class ToneTrack(MediaStreamTrack):
    """Synthetic microphone: a 440 Hz sine at 48 kHz in 20 ms frames, paced in real time."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._table = _tone_second()
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        samples = int(AUDIO_PTIME * SAMPLE_RATE)
        if self._start is None:
            self._start = time.time()
        else:
            self._pts += samples
            await asyncio.sleep(self._start + self._pts / SAMPLE_RATE - time.time())
        offset = self._pts % SAMPLE_RATE
        chunk = (self._table[offset:] + self._table[:offset])[:samples]
        frame = AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(chunk.tobytes())
        frame.pts = self._pts
        frame.sample_rate = SAMPLE_RATE
        frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
        return frame


@functools.cache
def _tone_second() -> array.array[int]:
    """One second of the tone, computed once: building it costs tens of ms of CPU."""
    return array.array("h", (int(8000 * math.sin(2 * math.pi * TONE_HZ * i / SAMPLE_RATE))
                             for i in range(SAMPLE_RATE)))


WsOpener = aiohttp.ClientSession | TestClient[Any, Any]  # both can open a WebSocket


def tone_and_bar() -> list[MediaStreamTrack]:
    """The default microphone and camera of a test party."""
    return [ToneTrack(), MovingBarTrack()]


class RtcLink:
    """One RTCPeerConnection to one remote participant, with decoded-frame counts."""

    def __init__(self, remote: str, config: RTCConfiguration,
                 tracks: list[MediaStreamTrack] | None = None) -> None:
        self.remote = remote
        self.pc = RTCPeerConnection(config)
        self.received = {"audio": 0, "video": 0}
        self._changed = asyncio.Event()
        self._readers: list[asyncio.Task[None]] = []
        for track in tone_and_bar() if tracks is None else tracks:
            self.pc.addTrack(track)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._changed.set)

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._readers.append(asyncio.get_running_loop().create_task(self._read(track)))

    async def _read(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.received[track.kind] += 1
                self._changed.set()

    async def until(self, done: Callable[[], bool], what: str, timeout: float) -> None:
        """Wait for a condition on this link; a failed connection ends the wait at once."""
        try:
            async with asyncio.timeout(timeout):
                while not done():
                    if self.pc.connectionState in ("failed", "closed"):
                        raise ConnectionError(f"link to {self.remote} is "
                                              f"{self.pc.connectionState} waiting for {what}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"link to {self.remote}: no {what} within {timeout} s "
                               f"(state {self.pc.connectionState}, got {self.received})") from None

    async def close(self) -> None:
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)


class RtcClient:
    """A signalling connection whose `rtc.*` messages drive real peer connections.

    Other messages wait in `inbox` for `recv`. Whatever goes wrong while
    negotiating is kept in `failure` and raised by the next wait.
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, welcome: dict[str, Any],
                 trickle: bool = True) -> None:
        self.ws = ws
        self.trickle = trickle
        self.welcome = welcome
        self.links: dict[str, RtcLink] = {}
        self.inbox: list[dict[str, Any]] = []
        self.failure: BaseException | None = None
        self._arrived = asyncio.Condition()
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())
        servers = [RTCIceServer(**s) for s in welcome.get("ice_servers", [])]
        self.config = RTCConfiguration(iceServers=servers)
        self.media: Callable[[], list[MediaStreamTrack]] = tone_and_bar
        """What each new link sends (fresh tracks per link: a track feeds one connection)."""

    @classmethod
    async def open(cls, http: WsOpener, token: str, url: str = "/ws",
                   trickle: bool = True) -> RtcClient:
        """Connect, say hello and wait for `welcome`; `trickle=False` keeps ICE in the SDP."""
        ws = await http.ws_connect(url)
        await ws.send_str(json.dumps({"type": "hello", "token": token}))
        frame = await ws.receive(timeout=WAIT_S)
        welcome = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else {}
        if welcome.get("type") != "welcome":
            await ws.close()
            raise ConnectionError(f"no welcome: {frame.type} {frame.data!r}")
        return cls(ws, welcome, trickle)

    async def available(self) -> RtcClient:
        """As a specialist: go available and wait until the server says so."""
        await self.send({"type": "agent.status", "status": "available"})
        await self.recv("agent.status", status="available")
        return self

    @property
    def me(self) -> str:
        return str(self.welcome["participant_id"])

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    async def recv(self, type_: str, timeout: float = WAIT_S, **match: Any) -> dict[str, Any]:
        """The first non-`rtc.*` message of `type_` with the given fields, received or to come."""

        def pick() -> dict[str, Any] | None:
            for i, msg in enumerate(self.inbox):
                if msg["type"] == type_ and all(msg.get(k) == v for k, v in match.items()):
                    return self.inbox.pop(i)
            return None

        found: dict[str, Any] | None = None

        def ready() -> bool:
            nonlocal found
            found = pick()
            return found is not None or self.failure is not None or self.ws.closed

        try:
            async with asyncio.timeout(timeout), self._arrived:
                await self._arrived.wait_for(ready)
        except TimeoutError:
            raise TimeoutError(f"{self.me}: no {type_} {match} within {timeout} s; "
                               f"inbox {self.inbox}") from None
        if found is None:
            raise ConnectionError(f"{self.me} waiting for {type_}: "
                                  f"{self.failure or 'socket closed'}") from self.failure
        return found

    async def call(self, call_id: str, remote: str) -> RtcLink:
        """Open a peer connection to `remote` and send it the SDP offer (the later joiner's job)."""
        link = self._link(remote)
        await link.pc.setLocalDescription(await link.pc.createOffer())
        await self._send_local(call_id, link)
        return link

    async def connected(self, remote: str, timeout: float = WAIT_S) -> RtcLink:
        """Wait until the link to `remote` exists and is `connected`."""
        link = await self._wait_link(remote, timeout)
        await link.until(lambda: link.pc.connectionState == "connected", "connection", timeout)
        return link

    async def frames(self, remote: str, video: int, audio: int, timeout: float = WAIT_S) -> RtcLink:
        """Wait until at least `video` and `audio` decoded frames came from `remote`."""
        link = await self._wait_link(remote, timeout)
        await link.until(lambda: link.received["video"] >= video
                         and link.received["audio"] >= audio,
                         f"{video} video + {audio} audio frames", timeout)
        return link

    async def hang_up_media(self) -> None:
        """Close every peer connection (signalling stays open)."""
        links, self.links = list(self.links.values()), {}
        for link in links:
            await link.close()

    async def close(self) -> None:
        """Close the peer connections and the socket; safe to call twice."""
        await self.hang_up_media()
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)

    # ---- negotiation ----------------------------------------------------------------

    def _link(self, remote: str) -> RtcLink:
        link = self.links.get(remote)
        if link is None:
            link = self.links[remote] = RtcLink(remote, self.config, self.media())
        return link

    async def _wait_link(self, remote: str, timeout: float) -> RtcLink:
        async with asyncio.timeout(timeout), self._arrived:
            await self._arrived.wait_for(lambda: remote in self.links or self.failure is not None)
        if self.failure is not None:
            raise ConnectionError(f"{self.me}: negotiation failed") from self.failure
        return self.links[remote]

    async def _send_local(self, call_id: str, link: RtcLink) -> None:
        """Send our description without candidates, then each candidate, then end-of-candidates."""
        local = link.pc.localDescription
        if not self.trickle:
            await self.send({"type": "rtc.description", "call_id": call_id, "to": link.remote,
                             "description": {"type": local.type, "sdp": local.sdp}})
            return
        lines = local.sdp.splitlines()
        sdp = "\r\n".join(x for x in lines if not x.startswith(TRICKLED)) + "\r\n"
        await self.send({"type": "rtc.description", "call_id": call_id, "to": link.remote,
                         "description": {"type": local.type, "sdp": sdp}})
        for transceiver in link.pc.getTransceivers()[:1]:  # BUNDLE: one transport for all
            gatherer = transceiver.sender.transport.transport.iceGatherer
            for candidate in gatherer.getLocalCandidates():
                line = "candidate:" + candidate_to_sdp(candidate)
                await self.send({"type": "rtc.candidate", "call_id": call_id, "to": link.remote,
                                 "candidate": {"candidate": line, "sdpMid": transceiver.mid,
                                               "sdpMLineIndex": 0}})
        await self.send({"type": "rtc.candidate", "call_id": call_id, "to": link.remote,
                         "candidate": None})

    async def _on_description(self, msg: dict[str, Any]) -> None:
        link = self._link(msg["from"])
        description = RTCSessionDescription(**msg["description"])
        await link.pc.setRemoteDescription(description)
        if description.type == "offer":
            await link.pc.setLocalDescription(await link.pc.createAnswer())
            await self._send_local(msg["call_id"], link)

    async def _on_candidate(self, msg: dict[str, Any]) -> None:
        link = self.links.get(msg["from"])
        if link is None:
            raise ConnectionError(f"candidate from {msg['from']} before its description")
        data = msg["candidate"]
        if data is None:
            await link.pc.addIceCandidate(None)
            return
        candidate = candidate_from_sdp(data["candidate"].removeprefix("candidate:"))
        candidate.sdpMid = data.get("sdpMid")
        candidate.sdpMLineIndex = data.get("sdpMLineIndex")
        await link.pc.addIceCandidate(candidate)

    async def _read_loop(self) -> None:
        handlers: dict[str, Callable[[dict[str, Any]], Awaitable[None]]] = {
            "rtc.description": self._on_description, "rtc.candidate": self._on_candidate}
        try:
            async for frame in self.ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    break
                msg = json.loads(frame.data)
                handler = handlers.get(msg["type"])
                if handler is not None:
                    await handler(msg)
                async with self._arrived:
                    if handler is None:
                        self.inbox.append(msg)
                    self._arrived.notify_all()
        except Exception as exc:  # kept as state and raised by the next wait
            self.failure = exc
        async with self._arrived:
            self._arrived.notify_all()


async def send_to(parties: list[RtcClient], call_id: str, remote: str, seconds: float,
                  timeout: float = 30.0) -> None:
    """Each party offers its tracks to `remote` (e.g. the recorder), then sends it `seconds`
    of video once connected (counted in frames sent, not slept)."""
    for party in parties:
        await party.call(call_id, remote)
    for party in parties:
        link = await party.connected(remote, timeout)
        [track] = [s.track for s in link.pc.getSenders() if s.track and s.track.kind == "video"]
        assert isinstance(track, MovingBarTrack)
        until = track.sent + seconds * VIDEO_FPS
        async with asyncio.timeout(timeout):
            while track.sent < until:
                await asyncio.sleep(0.05)


async def recorder_handed_over(parties: list[RtcClient], lost: str, successor: str) -> None:
    """Each party hears the recorder `lost` leave (`recorder_lost`) and `successor` join,
    and drops its link to the lost one."""
    for party in parties:
        left = await party.recv("participant.left")
        assert left["participant"] == lost and left["reason"] == "recorder_lost"
        assert (await party.recv("participant.joined"))["participant"]["id"] == successor
        await party.links.pop(lost).close()
