"""Encoded-frame hook: make aiortc hand the recorder VP8/Opus frames instead of pictures.

aiortc (tested range ``AIORTC_TESTED``) has no public API for encoded frames: every
``RTCRtpReceiver`` depayloads RTP into a ``JitterFrame`` and puts it on a ``queue.Queue``
read by a decoder thread (``aiortc.rtcrtpreceiver.decoder_worker``). Decoding is what makes
aiortc's ``MediaRecorder`` cost most of a core per session, and the recorder does not need
pictures; even without decoding, the thread hop (a condition variable, a GIL hand-over and
a self-pipe write per frame) was a fifth of the recorder's CPU.

This module is the *only* place that touches aiortc internals, and it does so per receiver:

* ``install()`` swaps the module-level ``decoder_worker`` for one that returns at once when
  its input is an ``InlineDecoderQueue`` and runs aiortc's real worker otherwise, so every
  other receiver in the process keeps its decoder thread.
* ``ReceiverTap`` gives one receiver *instance* an ``InlineDecoderQueue`` (frames become
  ``av.Packet``s on the track's queue, in the event loop, as they complete), throttles its
  REMB feedback, and wraps ``_handle_rtp_packet`` / ``_handle_rtcp_packet`` to observe RTP
  packets and RTCP sender reports before aiortc handles them; it sends PLIs and NACKs
  through ``_send_rtcp_pli`` / ``_send_rtcp_nack`` and reads the RTP timestamp origin
  aiortc subtracted.

``check_compatibility()`` verifies every internal used here and raises
``PassthroughUnsupported`` with the name of what changed; the recorder calls it on
``install()`` and ``tests/recording/test_passthrough_contract.py`` calls it in CI.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
import av
from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import AnyRtcpPacket, RtpPacket

receiver_module: Any = importlib.import_module("aiortc.rtcrtpreceiver")
"""Typed as Any: the hook reads and replaces names aiortc does not export."""

AIORTC_TESTED = ">=1.16,<1.17"
_TESTED_MAJOR_MINOR = (1, 16)
REMB_MIN_INTERVAL_MS = 250
"""aiortc sends a REMB for every packet while it sees over-use (any CPU hiccup here looks
like congestion): one every 250 ms still lets the sender back off within a frame or two."""

RtpObserver = Callable[[RtpPacket], Awaitable[None]]
RtcpObserver = Callable[[Any], None]

_aiortc_decoder_worker = receiver_module.decoder_worker
_install_lock = threading.Lock()

_REQUIRED_SOURCE = {
    "RTCRtpReceiver.__init__": (
        "self.__decoder_queue", "self.__timestamp_mapper", "self.__remote_bitrate_estimator"),
    "RTCRtpReceiver.receive": ("target=decoder_worker", "self.__decoder_queue"),
    "RTCRtpReceiver._handle_rtp_packet": (
        "self.__decoder_queue.put((codec, encoded_frame))",
        "self.__remote_bitrate_estimator.add("),
    "RTCRtpReceiver._RTCRtpReceiver__stop_decoder": ("self.__decoder_queue.put(None)",),
}


class PassthroughUnsupported(RuntimeError):
    """The installed aiortc no longer has an internal this hook relies on."""


class InlineDecoderQueue:
    """Stands in for a receiver's decoder queue: each complete frame goes to the track as an
    ``av.Packet`` right away, in the event loop, instead of through a thread.

    ``pts`` is aiortc's mapped RTP timestamp (RTP units, origin = first frame's timestamp);
    ``None`` (the receiver stopping) ends the track as aiortc's worker would.
    """

    def __init__(self, output: asyncio.Queue[Any]) -> None:
        self._output = output

    def put(self, task: tuple[Any, JitterFrame] | None) -> None:
        if task is None:
            self._output.put_nowait(None)
            return
        frame = task[1]
        packet = av.Packet(frame.data)
        packet.pts = frame.timestamp
        self._output.put_nowait(packet)


class ThrottledBitrateEstimator:
    """aiortc's remote bitrate estimator, with at most one REMB per ``REMB_MIN_INTERVAL_MS``."""

    def __init__(self, estimator: Any) -> None:
        self._estimator = estimator
        self._last_ms: int | None = None

    def add(self, **packet: Any) -> Any:
        remb = self._estimator.add(**packet)
        now_ms = packet["arrival_time_ms"]
        if remb is None or (
            self._last_ms is not None and now_ms - self._last_ms < REMB_MIN_INTERVAL_MS
        ):
            return None
        self._last_ms = now_ms
        return remb


def _select_worker(
    loop: asyncio.AbstractEventLoop, input_q: Any, output_q: Any, decode_error: Any
) -> None:
    """Replacement for ``rtcrtpreceiver.decoder_worker``: no thread work for tapped receivers."""
    if isinstance(input_q, InlineDecoderQueue):
        return
    _aiortc_decoder_worker(loop, input_q, output_q, decode_error)


def check_compatibility() -> None:
    """Raise ``PassthroughUnsupported`` if an aiortc internal used here is missing."""
    version = tuple(int(part) for part in aiortc.__version__.split(".")[:2])
    if version != _TESTED_MAJOR_MINOR:
        raise PassthroughUnsupported(
            f"aiortc {aiortc.__version__} is not in the tested range {AIORTC_TESTED}"
        )
    worker = inspect.signature(_aiortc_decoder_worker)
    if list(worker.parameters) != ["loop", "input_q", "output_q", "decode_error"]:
        raise PassthroughUnsupported(f"aiortc decoder_worker{worker} changed its arguments")
    for name in ("_handle_rtp_packet", "_handle_rtcp_packet", "_send_rtcp_pli",
                 "_send_rtcp_nack"):
        if not inspect.iscoroutinefunction(getattr(RTCRtpReceiver, name, None)):
            raise PassthroughUnsupported(f"RTCRtpReceiver.{name} is gone or not async")
    for qualified, needles in _REQUIRED_SOURCE.items():
        method = getattr(RTCRtpReceiver, qualified.split(".", 1)[1], None)
        source = inspect.getsource(method) if method is not None else ""
        for needle in needles:
            if needle not in source:
                raise PassthroughUnsupported(f"{qualified} no longer has {needle!r}")
    if "_origin" not in inspect.getsource(receiver_module.TimestampMapper):
        raise PassthroughUnsupported("TimestampMapper no longer keeps _origin")
    if "self._queue" not in inspect.getsource(receiver_module.RemoteStreamTrack):
        raise PassthroughUnsupported("RemoteStreamTrack no longer reads self._queue")
    frame = JitterFrame(data=b"", timestamp=0)
    if not (hasattr(frame, "data") and hasattr(frame, "timestamp")):
        raise PassthroughUnsupported("JitterFrame no longer has data/timestamp")


def install() -> None:
    """Swap aiortc's decoder worker for the selector; idempotent, process-wide."""
    with _install_lock:
        current = receiver_module.decoder_worker
        if current is _select_worker:
            return
        check_compatibility()
        if current is not _aiortc_decoder_worker:
            raise PassthroughUnsupported("rtcrtpreceiver.decoder_worker was already replaced")
        receiver_module.decoder_worker = _select_worker


def is_installed() -> bool:
    return receiver_module.decoder_worker is _select_worker


class ReceiverTap:
    """Passthrough and observation for one ``RTCRtpReceiver`` (attach before ``receive``)."""

    def __init__(
        self, receiver: RTCRtpReceiver, on_rtp: RtpObserver, on_rtcp: RtcpObserver
    ) -> None:
        if not is_installed():
            raise PassthroughUnsupported("call passthrough.install() first")
        self._receiver = receiver
        attributes = vars(receiver)
        attributes["_RTCRtpReceiver__decoder_queue"] = InlineDecoderQueue(
            receiver.track._queue)  # type: ignore[attr-defined]
        estimator = attributes.get("_RTCRtpReceiver__remote_bitrate_estimator")
        if estimator is not None:
            attributes["_RTCRtpReceiver__remote_bitrate_estimator"] = (
                ThrottledBitrateEstimator(estimator))
        original_rtp = receiver._handle_rtp_packet
        original_rtcp = receiver._handle_rtcp_packet

        async def handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            await on_rtp(packet)
            await original_rtp(packet, arrival_time_ms)

        async def handle_rtcp(packet: AnyRtcpPacket) -> None:
            on_rtcp(packet)
            await original_rtcp(packet)

        receiver._handle_rtp_packet = handle_rtp  # type: ignore[method-assign]
        receiver._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]

    def rtp_timestamp_origin(self) -> int | None:
        """The RTP timestamp aiortc subtracted from every frame's ``pts`` (first frame's)."""
        mapper = getattr(self._receiver, "_RTCRtpReceiver__timestamp_mapper", None)
        origin = getattr(mapper, "_origin", None)
        return None if origin is None else int(origin) & 0xFFFFFFFF

    async def request_keyframe(self, media_ssrc: int) -> None:
        """Send an RTCP PLI (RFC 4585 6.3.1) for ``media_ssrc``."""
        await self._receiver._send_rtcp_pli(media_ssrc)

    async def request_retransmission(self, media_ssrc: int, lost: list[int]) -> None:
        """Send an RTCP generic NACK (RFC 4585 6.2.1) for 16-bit sequence numbers ``lost``."""
        await self._receiver._send_rtcp_nack(media_ssrc, lost)
