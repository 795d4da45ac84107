"""``ParticipantRecorder``: the recorder's receive-only peer connection for one party.

Each party (kiosk or specialist) opens a second RTCPeerConnection to the recorder and
offers its tracks; the recorder answers receive-only with VP8 and Opus only, and writes
the encoded frames to one WebM segment. Storage and network failures become the
``failed`` state with a reason and a log line; they never escape as exceptions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.sdp import SessionDescription, candidate_from_sdp

from . import passthrough
from .clock import SenderClock
from .inbound import InboundStream
from .manifest import iso_utc, recording_path, sha256_file, validate_id, write_manifest
from .timeline import Timeline
from .webm import WebmWriter, WriteError

logger = logging.getLogger(__name__)

HOLD_S = 1.0
"""Frames wait this long for jitter, retransmissions and the first sender reports."""
TICK_S = 0.2
"""How often held frames are released to the file."""
INTAKE_END_S = 10.0
"""How long a closed connection's tracks may take to hand over their last packets."""
ACCEPTED_CODECS = {"audio": "audio/opus", "video": "video/vp8"}
CODEC_NAMES = {"audio": "opus", "video": "vp8"}


class RecordingState(StrEnum):
    NEW = "new"
    RECORDING = "recording"
    FINISHED = "finished"
    FAILED = "failed"


class OfferRejected(ValueError):
    """The offer cannot be recorded (malformed, renegotiation, no VP8/Opus track)."""


def _check_offer(sdp: str) -> None:
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:
        raise OfferRejected(f"malformed SDP offer: {exc}") from exc
    media = [m for m in description.media if m.kind in ACCEPTED_CODECS]
    if not media:
        raise OfferRejected("offer has no audio or video track")
    for m in media:
        names = {codec.mimeType.lower() for codec in m.rtp.codecs}
        if ACCEPTED_CODECS[m.kind] not in names:
            raise OfferRejected(f"offer's {m.kind} track has no {ACCEPTED_CODECS[m.kind]}")


class ParticipantRecorder:
    """Receive one party's audio and video and record them to WebM without transcoding."""

    def __init__(
        self,
        directory: Path,
        session_id: str,
        participant_id: str,
        *,
        segment: int = 1,
        configuration: RTCConfiguration | None = None,
        now: Callable[[], float] = time.time,
        hold_s: float = HOLD_S,
    ) -> None:
        self.session_id = validate_id("session_id", session_id)
        self.participant_id = validate_id("participant_id", participant_id)
        self.segment = segment
        self.path = recording_path(directory, session_id, participant_id, segment, now())
        self._configuration = configuration
        self._now = now
        self._state = RecordingState.NEW
        self._reason: str | None = None
        self._pc: RTCPeerConnection | None = None
        self._offer: str | None = None
        self._sender_clock = SenderClock()
        self._timeline = Timeline(hold_s)
        self._streams: dict[str, InboundStream] = {}
        self._writer: WebmWriter | None = None
        self._started_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Future[dict[str, Any]] | None = None
        self._claimed = False
        """True once this recorder created ``path``: only then may it delete it."""
        self._connected = False
        """True once the party's connection was up (media could have come)."""
        self.on_gone: Callable[[], None] | None = None
        """Called when the party's connection closes or fails before `close()`."""

    @property
    def state(self) -> RecordingState:
        return self._state

    @property
    def reason(self) -> str | None:
        """Why the recording failed, None otherwise."""
        return self._reason

    def _set_state(self, state: RecordingState, reason: str | None = None) -> None:
        logger.info(
            "recording %s/%s-%d %s -> %s%s", self.session_id, self.participant_id,
            self.segment, self._state, state, f" ({reason})" if reason else "",
        )
        self._state = state
        if reason is not None:
            self._reason = reason

    def _fail(self, reason: str) -> None:
        if self._state in (RecordingState.FAILED, RecordingState.FINISHED):
            return
        logger.error("recording %s/%s failed: %s", self.session_id, self.participant_id, reason)
        self._set_state(RecordingState.FAILED, reason)

    async def handle_offer(self, sdp: str) -> str | None:
        """Answer the party's offer receive-only; None if the recording already failed.

        Raises ``OfferRejected`` for an offer that cannot be recorded.
        """
        if self._state != RecordingState.NEW or self._closing is not None:
            raise OfferRejected(f"recorder is {self._state}, renegotiation is not supported")
        _check_offer(sdp)
        self._offer = sdp
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.open("xb").close()
            self._claimed = True
        except OSError as exc:
            self._fail(f"cannot create {self.path}: {exc.strerror or exc}")
            return None
        passthrough.install()
        self._pc = pc = RTCPeerConnection(self._configuration)
        pc.on("connectionstatechange", self._on_connection_state)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            kind = transceiver.kind
            if kind not in ACCEPTED_CODECS or kind in self._streams:
                transceiver.direction = "inactive"
                continue
            capabilities = RTCRtpReceiver.getCapabilities(kind)
            assert capabilities is not None
            transceiver.setCodecPreferences(
                [c for c in capabilities.codecs
                 if c.mimeType.lower() in (ACCEPTED_CODECS[kind], "video/rtx")]
            )
            transceiver.direction = "recvonly"
            self._streams[kind] = InboundStream(
                kind, transceiver.receiver, transceiver.receiver.track,
                self._sender_clock, self._timeline, self._now,
            )
        await pc.setLocalDescription(await pc.createAnswer())
        self._set_state(RecordingState.RECORDING)
        self._tasks = [asyncio.create_task(s.run()) for s in self._streams.values()]
        self._tasks.append(asyncio.create_task(self._write_loop()))
        return pc.localDescription.sdp

    def answer_to(self, sdp: str) -> str | None:
        """The answer given to `sdp` if it is the offer this recorder answered and is still
        recording, else None. A party whose socket dropped before the answer came sends its
        offer again, unchanged (its peer connection still waits for an answer); answered
        anew, by a new peer connection, the party would take whichever answer came first,
        and the first belongs to the connection the new one replaced."""
        pc = self._pc
        if (self._state != RecordingState.RECORDING or self._closing is not None
                or pc is None or pc.localDescription is None or sdp != self._offer):
            return None
        return pc.localDescription.sdp

    async def add_candidate(
        self, candidate: str, sdp_mid: str | None = None, sdp_mline_index: int | None = None
    ) -> None:
        """Add a trickled ICE candidate (``candidate:...`` line as browsers send it)."""
        if self._pc is None or not candidate:
            return
        try:
            parsed = candidate_from_sdp(candidate.removeprefix("candidate:"))
        except (ValueError, IndexError) as exc:
            raise ValueError(f"malformed ICE candidate {candidate!r}") from exc
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = sdp_mline_index
        await self._pc.addIceCandidate(parsed)

    async def _on_connection_state(self) -> None:
        state = self._pc.connectionState if self._pc is not None else "closed"
        if state == "connected":
            self._connected = True
        if state == "failed":
            logger.warning("recording %s/%s: connection failed, media stops here",
                           self.session_id, self.participant_id)
        if state in ("failed", "closed") and self._closing is None and self.on_gone:
            self.on_gone()

    async def _write_loop(self) -> None:
        while self._state == RecordingState.RECORDING:
            await asyncio.sleep(TICK_S)
            self._drain(flush=False)
        if self._state == RecordingState.FAILED and self._pc is not None:
            await self._pc.close()

    def _drain(self, flush: bool) -> None:
        for when, unit in self._timeline.release(self._now(), flush):
            if self._state != RecordingState.RECORDING:
                return
            try:
                if self._writer is None:
                    self._started_at = when
                    self._writer = self._open_writer()
                started_at = self._started_at if self._started_at is not None else when
                self._writer.write(unit.kind, when - started_at, unit.data, unit.keyframe)
            except WriteError as exc:
                self._fail(str(exc))

    def _open_writer(self) -> WebmWriter:
        video = self._streams.get("video")
        width, height = (video.dimensions if video else None) or (640, 480)
        return WebmWriter(
            self.path, video=video is not None, audio="audio" in self._streams,
            width=width, height=height,
        )

    async def close(self) -> dict[str, Any]:
        """Stop receiving, finish the file and return the manifest; safe to call twice."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_future()
            try:
                self._closing.set_result(await self._finish())
            except BaseException as exc:
                self._closing.set_exception(exc)
                raise
        return await asyncio.shield(self._closing)

    async def _finish(self) -> dict[str, Any]:
        if self._pc is not None:
            await self._pc.close()
        if self._tasks:
            self._tasks[-1].cancel()
        await self._end_intake()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):
                self._fail(f"media intake stopped: {result!r}")
        if self._state == RecordingState.RECORDING:
            self._drain(flush=True)
        try:
            if self._writer is not None:
                self._writer.close()
        except WriteError as exc:
            self._fail(str(exc))
        if self._state in (RecordingState.NEW, RecordingState.RECORDING):
            self._set_state(RecordingState.FINISHED)
        if self._writer is None and self._claimed:
            with contextlib.suppress(OSError):
                self.path.unlink(missing_ok=True)
        manifest = await self._build_manifest()
        if self.path.parent.is_dir():
            try:
                await asyncio.to_thread(write_manifest, self.path.with_suffix(".json"), manifest)
            except OSError as exc:
                logger.error("cannot write manifest for %s: %s", self.path, exc)
        return manifest

    async def _end_intake(self) -> None:
        """After the connection closed: a track whose receiver ran ends by itself once its
        last packets are read; one whose receiver never started (the party never connected:
        say its answer was lost with a node) never ends, and waiting for it would keep the
        segment open for ever. So: a bounded wait if media could have come, then stop."""
        intake = [task for task in self._tasks[:-1] if not task.done()]
        if intake and self._connected:
            await asyncio.wait(intake, timeout=INTAKE_END_S)
        for task in intake:
            task.cancel()

    async def _build_manifest(self) -> dict[str, Any]:
        size = sha256 = None
        if self._writer is not None and self.path.is_file():
            try:
                size = self.path.stat().st_size
                sha256 = await asyncio.to_thread(sha256_file, self.path)
            except OSError as exc:
                logger.error("cannot hash %s: %s", self.path, exc)
        writer = self._writer
        tracks = writer.tracks if writer else {}
        return {
            "session_id": self.session_id,
            "participant_id": self.participant_id,
            "segment": self.segment,
            "state": str(self._state),
            "reason": self._reason,
            "path": str(self.path),
            "started_at": iso_utc(self._started_at),
            "started_at_unix": self._started_at,
            "ended_at": iso_utc(self._now()),
            "duration_s": round(writer.duration_s, 3) if writer else 0.0,
            "offsets": {
                kind: stats.first_pts_ms / 1000
                for kind, stats in tracks.items() if stats.first_pts_ms is not None
            },
            "codecs": {kind: CODEC_NAMES[kind] for kind in tracks},
            "frames": {kind: stats.frames for kind, stats in tracks.items()},
            "frames_received": {k: s.frames_received for k, s in self._streams.items()},
            "size_bytes": size,
            "sha256": sha256,
            "synchronised": {k: s.clock.synchronised for k, s in self._streams.items()},
            "gaps": sum(s.gaps for s in self._streams.values()),
            "frames_dropped": sum(s.frames_dropped for s in self._streams.values()),
            "keyframe_requests": sum(s.keyframe_requests for s in self._streams.values()),
            "retransmission_requests": sum(
                s.retransmission_requests for s in self._streams.values()
            ),
        }
