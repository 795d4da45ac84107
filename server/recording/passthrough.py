"""Encoded-frame hook: make aiortc hand the recorder VP8/Opus frames instead of pictures.

aiortc (tested range ``AIORTC_TESTED``) has no public API for encoded frames: every
``RTCRtpReceiver`` depayloads RTP into a ``JitterFrame`` and hands it to a decoder thread
that calls ``aiortc.rtcrtpreceiver.get_decoder(codec)``. Decoding is what makes aiortc's
``MediaRecorder`` cost most of a core per session, and the recorder does not need pictures.

This module is the *only* place that touches aiortc internals, and it does so per receiver:

* ``install()`` swaps the module-level ``get_decoder`` for a selector that returns a
  ``PassthroughDecoder`` only for decoder threads registered by a ``ReceiverTap``; every
  other receiver in the process keeps aiortc's real decoders.
* ``ReceiverTap`` wraps three methods of one receiver *instance* (``receive``,
  ``_handle_rtp_packet``, ``_handle_rtcp_packet``) to register its decoder thread and to
  observe RTP packets and RTCP sender reports before aiortc handles them; it sends PLIs
  and NACKs through ``_send_rtcp_pli`` / ``_send_rtcp_nack`` and reads the RTP timestamp
  origin aiortc subtracted.

``check_compatibility()`` verifies every internal used here and raises
``PassthroughUnsupported`` with the name of what changed; the recorder calls it on
``install()`` and ``tests/recording/test_passthrough_contract.py`` calls it in CI.
"""

from __future__ import annotations

import importlib
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
import av
from aiortc import RTCRtpReceiver
from aiortc.codecs import get_decoder as aiortc_get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import AnyRtcpPacket, RtpPacket

receiver_module: Any = importlib.import_module("aiortc.rtcrtpreceiver")
"""Typed as Any: the hook reads and replaces names aiortc does not export."""

AIORTC_TESTED = ">=1.16,<1.17"
_TESTED_MAJOR_MINOR = (1, 16)

RtpObserver = Callable[[RtpPacket], Awaitable[None]]
RtcpObserver = Callable[[Any], None]

_passthrough_threads: weakref.WeakSet[threading.Thread] = weakref.WeakSet()
_install_lock = threading.Lock()


class PassthroughUnsupported(RuntimeError):
    """The installed aiortc no longer has an internal this hook relies on."""


class PassthroughDecoder:
    """Stands in for aiortc's decoder: returns the encoded frame as an ``av.Packet``.

    ``pts`` is aiortc's mapped RTP timestamp (RTP units, origin = first frame's timestamp).
    """

    def decode(self, encoded_frame: JitterFrame) -> list[av.Packet[Any]]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        return [packet]


def _select_decoder(codec: RTCRtpCodecParameters) -> Any:
    """Replacement for ``rtcrtpreceiver.get_decoder``, called from the decoder thread."""
    if threading.current_thread() in _passthrough_threads:
        return PassthroughDecoder()
    return aiortc_get_decoder(codec)


def check_compatibility() -> None:
    """Raise ``PassthroughUnsupported`` if an aiortc internal used here is missing."""
    version = tuple(int(part) for part in aiortc.__version__.split(".")[:2])
    if version != _TESTED_MAJOR_MINOR:
        raise PassthroughUnsupported(
            f"aiortc {aiortc.__version__} is not in the tested range {AIORTC_TESTED}"
        )
    if "get_decoder" not in receiver_module.decoder_worker.__code__.co_names:
        raise PassthroughUnsupported("aiortc decoder_worker no longer calls get_decoder")
    for name in (
        "receive", "_handle_rtp_packet", "_handle_rtcp_packet", "_send_rtcp_pli",
        "_send_rtcp_nack",
    ):
        if not inspect.iscoroutinefunction(getattr(RTCRtpReceiver, name, None)):
            raise PassthroughUnsupported(f"RTCRtpReceiver.{name} is gone or not async")
    source = inspect.getsource(RTCRtpReceiver.__init__)
    for attribute in ("self.__timestamp_mapper", "self.__decoder_thread"):
        if attribute not in source:
            raise PassthroughUnsupported(f"RTCRtpReceiver no longer sets {attribute}")
    if "_origin" not in inspect.getsource(receiver_module.TimestampMapper):
        raise PassthroughUnsupported("TimestampMapper no longer keeps _origin")
    frame = JitterFrame(data=b"", timestamp=0)
    if not (hasattr(frame, "data") and hasattr(frame, "timestamp")):
        raise PassthroughUnsupported("JitterFrame no longer has data/timestamp")


def install() -> None:
    """Swap aiortc's decoder lookup for the selector; idempotent, process-wide."""
    with _install_lock:
        current = receiver_module.get_decoder
        if current is _select_decoder:
            return
        check_compatibility()
        if current is not aiortc_get_decoder:
            raise PassthroughUnsupported("rtcrtpreceiver.get_decoder was already replaced")
        receiver_module.get_decoder = _select_decoder


def is_installed() -> bool:
    return receiver_module.get_decoder is _select_decoder


class ReceiverTap:
    """Passthrough and observation for one ``RTCRtpReceiver`` (attach before ``receive``)."""

    def __init__(
        self, receiver: RTCRtpReceiver, on_rtp: RtpObserver, on_rtcp: RtcpObserver
    ) -> None:
        if not is_installed():
            raise PassthroughUnsupported("call passthrough.install() first")
        self._receiver = receiver
        original_receive = receiver.receive
        original_rtp = receiver._handle_rtp_packet
        original_rtcp = receiver._handle_rtcp_packet

        async def receive(*args: Any, **kwargs: Any) -> None:
            await original_receive(*args, **kwargs)
            thread = getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)
            if thread is not None:
                _passthrough_threads.add(thread)

        async def handle_rtp(packet: RtpPacket, arrival_time_ms: int) -> None:
            await on_rtp(packet)
            await original_rtp(packet, arrival_time_ms)

        async def handle_rtcp(packet: AnyRtcpPacket) -> None:
            on_rtcp(packet)
            await original_rtcp(packet)

        receiver.receive = receive  # type: ignore[method-assign]
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
