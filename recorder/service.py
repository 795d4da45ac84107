"""`vwin recorder`: a recorder process that joins the signalling server like any participant.

It says `hello {token, capacity}` over `/ws`, is told `record.start` for each session it
must record, answers each party's offer receive-only (`ParticipantRecorder`, one WebM per
party per segment) and reports every segment: `record.segment` when the file is created,
`record.manifest` when it is closed (on `record.stop`, or when the party's connection
closes or fails: a stop lost on the way must not keep it open). Messages of one call are
handled in order, calls in parallel. A lost connection closes every recording (the
server has already handed the sessions on) and reconnects; manifests it could not send
are sent after reconnecting.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import itertools
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp
from aiortc import RTCConfiguration, RTCIceServer

from .heap import HeapTrimmer
from .participant import OfferRejected, ParticipantRecorder

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 15.0
"""Back-off between connection attempts: quick after a server restart, gentle if it is down."""
PING_S = 10.0
"""Application pings keep the server's idle timeout (30 s by default) from closing us."""
REPORTS_KEPT_S = 30.0
"""Reports sent this recently go again on the next connection: a node killed as it read them
may never have stored them (issue 16's short day: a segment left `recording` for good). The
server takes a report it has already stored as done."""
REPORTS = ("record.segment", "record.manifest")
EARLY_KEEP_S = 30.0
"""How long a party's `rtc.*` for a call not started yet is kept for its `record.start`."""
EARLY_MAX_CALLS = 256
EARLY_MAX_MESSAGES = 32  # per call: an offer and its trickled candidates, a few times over
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_MANIFEST_KEYS = ("segment", "state", "reason", "started_at_unix", "duration_s", "offsets",
                  "codecs", "size_bytes", "sha256")


def file_id(participant: str) -> str:
    """A participant id (`terminal:T1`) as a file-name part (`terminal-T1`), never ambiguous."""
    plain = participant.replace(":", "-", 1)
    safe = _UNSAFE.sub("_", plain).replace("..", "_").lstrip("._-")[:96] or "party"
    if safe != plain:
        safe += "-" + hashlib.sha256(participant.encode()).hexdigest()[:8]
    return safe


def _verify(url: str) -> bool:
    """`wss://` to this machine (the local recorder of a TLS server): the certificate names
    the public host, not 127.0.0.1, and loopback cannot be intercepted; elsewhere verify."""
    parsed = urllib.parse.urlsplit(url)
    loopback = parsed.hostname in ("127.0.0.1", "::1", "localhost")
    return not (parsed.scheme == "wss" and loopback)


class _CallRecording:
    """The segments of one call on this recorder, one `ParticipantRecorder` per party."""

    def __init__(self, call_id: str, session_id: str, segment: int) -> None:
        self.call_id = call_id
        self.session_id = session_id
        self.segment = segment
        self.parties: dict[str, ParticipantRecorder] = {}


class RecorderService:
    """One connection to the signalling server and the recordings it asked for."""

    def __init__(self, url: str | Sequence[str], token: str, directory: Path,
                 capacity: int) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        self.url = self.urls[0]  # the node it talks to (or tries) now
        self.token = token
        self.directory = directory.resolve()
        self.capacity = capacity
        self.name: str | None = None
        self._calls: dict[str, _CallRecording] = {}
        self._chains: dict[str, asyncio.Task[None]] = {}
        self._heap = HeapTrimmer(collect=True)  # a call's cycles and buffers (recorder.heap)
        self._unsent: list[dict[str, Any]] = []
        self._recent: collections.deque[tuple[float, dict[str, Any]]] = collections.deque()
        self._early: dict[str, tuple[float, list[dict[str, Any]]]] = {}  # `_keep_early`
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.ice_servers: list[dict[str, Any]] = []
        """The server's `ice_servers` (TURN credentials included), kept fresh by `ice.servers`."""

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected until `stop` is set; then close every recording. With several
        URLs (the nodes), a lost or refused connection goes on to the next at once, and
        backs off only once every one failed in a row: its node killed or taken for dead,
        a recorder tied to it was out of the pool for 40 s (issue 16's goal-size day)."""
        delay, failed = RECONNECT_MIN_S, 0
        async with aiohttp.ClientSession() as http:
            for turn in itertools.count():
                if stop.is_set():
                    break
                self.url = self.urls[turn % len(self.urls)]
                served = False
                try:
                    async with http.ws_connect(self.url, ssl=_verify(self.url)) as ws:
                        self._ws = ws
                        if await self._hello(ws):
                            delay, served = RECONNECT_MIN_S, True
                            await self._serve(ws, stop)
                        if stop.is_set():  # report while the server can still hear us
                            await self._close_all("recorder stopping")
                except (aiohttp.ClientError, OSError) as exc:
                    log.warning("recorder: cannot reach %s: %s", self.url, exc)
                finally:
                    self._ws = None
                    await self._close_all("connection closed")
                failed = 0 if served else failed + 1
                if not stop.is_set():
                    round_failed = failed > 0 and failed % len(self.urls) == 0
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(),
                                               delay if round_failed else RECONNECT_MIN_S)
                    if round_failed:
                        delay = min(delay * 2, RECONNECT_MAX_S)

    async def _hello(self, ws: aiohttp.ClientWebSocketResponse) -> bool:
        await ws.send_str(json.dumps({"type": "hello", "token": self.token,
                                      "capacity": self.capacity}))
        frame = await ws.receive(timeout=30)
        reply = json.loads(frame.data) if frame.type == aiohttp.WSMsgType.TEXT else {}
        if reply.get("type") != "welcome" or reply.get("role") != "recorder":
            log.error("recorder: refused by the server: %s", reply or frame.type)
            return False
        self.name = str(reply["id"])
        self.ice_servers = list(reply.get("ice_servers") or [])
        log.info("recorder %s connected to %s (capacity %d)", self.name, self.url, self.capacity)
        since = time.monotonic() - REPORTS_KEPT_S
        again = [message for sent, message in self._recent if sent >= since]
        unsent, self._unsent, self._recent = self._unsent, [], collections.deque()
        for message in again + unsent:
            await self._send(message)
        return True

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        pinger = asyncio.ensure_future(self._ping(ws))
        try:
            while True:
                receiving = asyncio.ensure_future(ws.receive())
                await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not receiving.done():
                    receiving.cancel()
                    return
                frame = receiving.result()
                if frame.type != aiohttp.WSMsgType.TEXT:
                    log.warning("recorder: connection closed (%s, %s)", frame.type, ws.close_code)
                    return
                self._dispatch(json.loads(frame.data))
        finally:
            stopping.cancel()
            pinger.cancel()

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while not ws.closed:
                await asyncio.sleep(PING_S)
                await ws.send_str('{"type": "ping"}')

    def _dispatch(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        call_id = str(msg.get("call_id", ""))
        if kind == "record.start":
            self._in_order(call_id, lambda: self._start(msg))
        elif kind == "record.stop":
            self._in_order(call_id, lambda: self._stop(call_id))
        elif kind == "rtc.description":
            self._in_order(call_id, lambda: self._offer(msg))
        elif kind == "rtc.candidate":
            self._in_order(call_id, lambda: self._candidate(msg))
        elif kind == "ice.servers":
            self.ice_servers = list(msg.get("ice_servers") or [])
        elif kind == "error":
            log.warning("recorder: server refused: %s", msg)

    def _in_order(self, key: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` after the earlier steps of the same call, without blocking the reader."""
        previous = self._chains.get(key)

        async def run() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await step()
            except Exception:
                log.exception("recorder: handling a message of call %s failed", key)

        task = asyncio.get_running_loop().create_task(run())
        self._chains[key] = task
        task.add_done_callback(lambda t: self._chains.pop(key, None)
                               if self._chains.get(key) is t else None)

    async def _start(self, msg: dict[str, Any]) -> None:
        call_id = str(msg["call_id"])
        if call_id not in self._calls:
            self._calls[call_id] = _CallRecording(call_id, str(msg["session_id"]),
                                                  int(msg.get("segment", 1)))
            log.info("recording call %s (session %s)", call_id, msg["session_id"])
        _, early = self._early.pop(call_id, (0.0, []))
        for kept in early:  # in the order they came, before anything later of the call
            await (self._offer(kept) if kept["type"] == "rtc.description"
                   else self._candidate(kept))

    def _keep_early(self, msg: dict[str, Any]) -> None:
        """A party's `rtc.*` for a call this recorder was not told to record (yet): relayed
        frames never wait on the server, so a party's offer can overtake its call's
        `record.start`, which is an event held behind the recorder's earlier numbered
        messages (a node lost, a slow node). Dropped, the party would wait for an answer
        that never comes and the call go unrecorded; kept a while, it is answered once the
        start comes. Calls never started here (given to another recorder, or over) are
        forgotten after `EARLY_KEEP_S`. A party that offers again (it resumed unanswered)
        is answered for its last offer only: its earlier peer connection is gone."""
        now = time.monotonic()
        for stale in [c for c, (at, _) in self._early.items() if now - at > EARLY_KEEP_S]:
            del self._early[stale]
        call_id = str(msg["call_id"])
        if call_id not in self._early and len(self._early) >= EARLY_MAX_CALLS:
            return
        _, kept = self._early.setdefault(call_id, (now, []))
        if msg["type"] == "rtc.description":  # a party's new offer replaces its earlier one
            kept[:] = [k for k in kept if k.get("from") != msg.get("from")]
        if len(kept) < EARLY_MAX_MESSAGES:
            kept.append(msg)

    async def _stop(self, call_id: str) -> None:
        self._early.pop(call_id, None)
        call = self._calls.pop(call_id, None)
        if call is not None:
            for party, recorder in list(call.parties.items()):
                await self._close(call, party, recorder)
            self._heap.trim_soon()

    async def _offer(self, msg: dict[str, Any]) -> None:
        call = self._calls.get(str(msg["call_id"]))
        description = msg.get("description") or {}
        if call is None and description.get("type") == "offer":
            log.info("recorder: an offer for call %s before its start: kept for it",
                     msg.get("call_id"))
            self._keep_early(msg)
            return
        if call is None or description.get("type") != "offer":
            log.warning("recorder: unexpected description for call %s", msg.get("call_id"))
            return
        party = str(msg["from"])
        sdp = str(description.get("sdp", ""))
        earlier = call.parties.get(party)
        again = earlier.answer_to(sdp) if earlier is not None else None
        if again is not None:  # its answer was lost (the party resumed): the same answer
            log.info("recorder: %s offered again in call %s: answered again", party,
                     call.call_id)
            await self._answer(call, party, again)
            return
        segment = call.segment
        call.parties.pop(party, None)
        if earlier is not None:  # the party reconnected and offers again: a new segment
            segment = earlier.segment + 1
            await self._close(call, party, earlier)
        config = RTCConfiguration(iceServers=[RTCIceServer(**s) for s in self.ice_servers])
        recorder = ParticipantRecorder(self.directory, call.session_id, file_id(party),
                                       segment=segment, configuration=config)
        while recorder.path.exists():
            recorder = ParticipantRecorder(self.directory, call.session_id, file_id(party),
                                           segment=recorder.segment + 1, configuration=config)
        call.parties[party] = recorder
        recorder.on_gone = lambda: self._in_order(
            call.call_id, lambda: self._gone(call, party, recorder))
        await self._send({"type": "record.segment", "call_id": call.call_id,
                          "session_id": call.session_id, "participant_id": party,
                          "segment": recorder.segment, "path": self._relative(recorder.path)})
        try:
            answer = await recorder.handle_offer(sdp)
        except OfferRejected as exc:
            log.warning("recorder: offer of %s refused: %s", party, exc)
            call.parties.pop(party, None)
            await self._report(call, party, await recorder.close(), failure=str(exc))
            return
        if answer is None:
            call.parties.pop(party, None)
            await self._report(call, party, await recorder.close())
            return
        await self._answer(call, party, answer)

    async def _answer(self, call: _CallRecording, party: str, sdp: str) -> None:
        await self._send({"type": "rtc.description", "call_id": call.call_id, "to": party,
                          "description": {"type": "answer", "sdp": sdp}})

    async def _candidate(self, msg: dict[str, Any]) -> None:
        call = self._calls.get(str(msg["call_id"]))
        if call is None:
            self._keep_early(msg)  # behind its offer, kept the same way
            return
        recorder = call.parties.get(str(msg["from"]))
        candidate = msg.get("candidate")
        if recorder is None or not candidate:
            return
        try:
            await recorder.add_candidate(str(candidate.get("candidate", "")),
                                         candidate.get("sdpMid"), candidate.get("sdpMLineIndex"))
        except ValueError as exc:
            log.warning("recorder: %s", exc)

    async def _gone(self, call: _CallRecording, party: str,
                    recorder: ParticipantRecorder) -> None:
        """The party's connection closed (it hung up its media) or failed: the segment ends
        here, whether or not `record.stop` ever comes (lost with a node, say)."""
        if call.parties.get(party) is recorder:
            await self._close(call, party, recorder)

    async def _close(self, call: _CallRecording, party: str,
                     recorder: ParticipantRecorder) -> None:
        call.parties.pop(party, None)
        await self._report(call, party, await recorder.close())

    async def _report(self, call: _CallRecording, party: str, manifest: dict[str, Any],
                      failure: str | None = None) -> None:
        report = {key: manifest.get(key) for key in _MANIFEST_KEYS}
        report["path"] = self._relative(Path(manifest["path"]))
        report["stats"] = {k: v for k, v in manifest.items()
                           if k not in _MANIFEST_KEYS and k not in ("path", "session_id",
                                                                    "participant_id")}
        if failure is not None or report["state"] not in ("finished", "failed"):
            report["state"] = "failed"
            report["reason"] = failure or report.get("reason") or str(manifest["state"])
        await self._send({"type": "record.manifest", "call_id": call.call_id,
                          "session_id": call.session_id, "participant_id": party,
                          "manifest": report})

    async def _close_all(self, why: str) -> None:
        chains = list(self._chains.values())
        await asyncio.gather(*chains, return_exceptions=True)
        calls, self._calls = list(self._calls.values()), {}
        if calls:
            log.warning("recorder: closing %d recording(s): %s", len(calls), why)
        for call in calls:
            for party, recorder in list(call.parties.items()):
                await self._close(call, party, recorder)

    async def _send(self, message: dict[str, Any]) -> None:
        ws = self._ws
        if ws is None or ws.closed:
            if message["type"] == "record.manifest":
                self._unsent.append(message)
            return
        try:
            await ws.send_str(json.dumps(message))
        except (ConnectionError, RuntimeError):
            if message["type"] == "record.manifest":
                self._unsent.append(message)
            return
        if message["type"] in REPORTS:
            now = time.monotonic()
            self._recent.append((now, message))
            while self._recent[0][0] < now - REPORTS_KEPT_S:
                self._recent.popleft()

    def _relative(self, path: Path) -> str:
        return path.resolve().relative_to(self.directory).as_posix()
