"""One received track of a participant: RTP bookkeeping, keyframe requests, frame intake.

The jitter buffer of aiortc hands over complete-looking frames, but after a lost packet
it eventually skips ahead and the next VP8 frames reference pictures the recorder never
got. Writing those would make the file undecodable, so video is checked here against the
RTP sequence numbers the tap saw: a frame must start right after the previous one and
begin with a VP8 partition start (RFC 7741), otherwise frames are dropped and a keyframe
(PLI) is requested until one arrives.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpSrPacket, RtpPacket

from .clock import SenderClock, StreamClock
from .passthrough import ReceiverTap
from .timeline import MediaUnit, Timeline

logger = logging.getLogger(__name__)

CLOCK_RATES = {"audio": 48000, "video": 90000}
KEYFRAME_RETRY_S = 0.5
"""Repeat an unanswered PLI this often (a lost PLI or keyframe must not stall video)."""
NACK_RETRY_S = 0.15
"""aiortc NACKs a lost packet once, when the gap appears; a lost retransmission would
then stall its jitter buffer until 512 packets pile up. Re-ask this often instead."""
NACK_GIVE_UP_S = 1.5
"""Stop asking after this long: the sender's history (128 packets) has moved on."""
FRAME_HISTORY = 256
"""RTP timestamps whose sequence ranges are remembered (~17 s of 15 fps video)."""


def vp8_descriptor_starts_frame(payload: bytes) -> bool:
    """RFC 7741 4.2: S bit set and partition index 0 = first packet of a frame."""
    return bool(payload) and payload[0] & 0x10 != 0 and payload[0] & 0x07 == 0


def vp8_frame_info(data: bytes) -> tuple[bool, bool, tuple[int, int] | None]:
    """(valid, keyframe, (width, height) if keyframe) from the VP8 frame header (RFC 6386 9.1)."""
    if len(data) < 3:
        return False, False, None
    tag = data[0] | data[1] << 8 | data[2] << 16
    keyframe = tag & 0x01 == 0
    first_partition = (tag >> 5) & 0x7FFFF
    header = 10 if keyframe else 3
    if len(data) < header or first_partition > len(data) - header:
        return False, keyframe, None
    if not keyframe:
        return True, False, None
    if data[3:6] != b"\x9d\x01\x2a":
        return False, True, None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    height = int.from_bytes(data[8:10], "little") & 0x3FFF
    return True, True, (width, height)


class InboundStream:
    """Audio or video from one party, from RTP packets to ``MediaUnit``s on the timeline."""

    def __init__(
        self,
        kind: str,
        receiver: RTCRtpReceiver,
        track: MediaStreamTrack,
        sender_clock: SenderClock,
        timeline: Timeline,
        now: Callable[[], float],
    ) -> None:
        self.kind = kind
        self.clock = StreamClock(CLOCK_RATES[kind], sender_clock)
        self.ssrc: int | None = None
        self.dimensions: tuple[int, int] | None = None
        self.frames_received = 0
        self.frames_dropped = 0
        self.gaps = 0
        self.keyframe_requests = 0
        self.retransmission_requests = 0
        self._track = track
        self._timeline = timeline
        self._now = now
        self._payload_type: int | None = None
        self._seq_reference: int | None = None
        self._frames: OrderedDict[int, list[int]] = OrderedDict()
        self._last_seq: int | None = None
        self._highest_seq: int | None = None
        self._missing: dict[int, float] = {}
        self._last_nack = float("-inf")
        self._awaiting_keyframe = kind == "video"
        self._last_keyframe_request = float("-inf")
        self._origin: int | None = None
        self._tap = ReceiverTap(receiver, self._on_rtp, self._on_rtcp)
        timeline.add_stream(kind, self.clock)

    async def _on_rtp(self, packet: RtpPacket) -> None:
        if not packet.payload:
            # Padding only (Chromium probes bandwidth on its RTX SSRC before the first
            # frame): no media, and its SSRC and timestamp must not be taken for the stream's.
            return
        if self.ssrc is None:
            self.ssrc = packet.ssrc
            self._payload_type = packet.payload_type
            self.clock.on_first_packet(packet.timestamp, self._now())
        if self.kind != "video":
            return
        payload = packet.payload
        sequence_number = packet.sequence_number
        if packet.ssrc != self.ssrc or packet.payload_type != self._payload_type:
            if len(payload) < 2:
                return
            # RTX (RFC 4588): original sequence number, then the original payload.
            sequence_number = int.from_bytes(payload[:2], "big")
            payload = payload[2:]
        self._note_video_packet(sequence_number, packet.timestamp, payload)
        if self._missing:
            await self._renack()
        if self._awaiting_keyframe:
            await self._request_keyframe()

    def _note_video_packet(self, sequence_number: int, timestamp: int, payload: bytes) -> None:
        seq = self._unwrap_seq(sequence_number)
        self._track_missing(seq)
        entry = self._frames.get(timestamp)
        starts = int(vp8_descriptor_starts_frame(payload))
        if entry is None:
            self._frames[timestamp] = [seq, seq, starts]
            if len(self._frames) > FRAME_HISTORY:
                self._frames.popitem(last=False)
            return
        if seq < entry[0]:
            entry[0], entry[2] = seq, starts
        elif seq == entry[0]:
            entry[2] |= starts
        entry[1] = max(entry[1], seq)

    def _track_missing(self, seq: int) -> None:
        if self._highest_seq is None or seq > self._highest_seq:
            if self._highest_seq is not None and seq - self._highest_seq < 1000:
                now = self._now()
                for lost in range(self._highest_seq + 1, seq):
                    self._missing[lost] = now
            self._highest_seq = seq
        else:
            self._missing.pop(seq, None)

    async def _renack(self) -> None:
        now = self._now()
        if self.ssrc is None or now - self._last_nack < NACK_RETRY_S:
            return
        for seq in [s for s, since in self._missing.items() if now - since > NACK_GIVE_UP_S]:
            del self._missing[seq]
        if self._missing:
            self._last_nack = now
            self.retransmission_requests += 1
            lost = sorted(seq & 0xFFFF for seq in self._missing)
            await self._tap.request_retransmission(self.ssrc, lost)

    def _unwrap_seq(self, sequence_number: int) -> int:
        if self._seq_reference is None:
            self._seq_reference = sequence_number
            return sequence_number
        delta = (sequence_number - self._seq_reference) % 65536
        if delta >= 32768:
            return self._seq_reference + delta - 65536
        self._seq_reference += delta
        return self._seq_reference

    def _on_rtcp(self, packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket) and packet.ssrc == self.ssrc:
            info = packet.sender_info
            self.clock.on_sender_report(info.rtp_timestamp, info.ntp_timestamp, self._now())

    async def _request_keyframe(self) -> None:
        now = self._now()
        if self.ssrc is None or now - self._last_keyframe_request < KEYFRAME_RETRY_S:
            return
        self._last_keyframe_request = now
        self.keyframe_requests += 1
        logger.debug("requesting keyframe for ssrc %d", self.ssrc)
        await self._tap.request_keyframe(self.ssrc)

    async def run(self) -> None:
        """Move frames from the track to the timeline until the track ends."""
        while True:
            try:
                packet = await self._track.recv()
            except MediaStreamError:
                return
            if not isinstance(packet, av.Packet) or packet.pts is None:
                raise TypeError("passthrough decoder not active on this receiver")
            if self._origin is None:
                self._origin = self._tap.rtp_timestamp_origin() or 0
            raw_timestamp = (self._origin + packet.pts) & 0xFFFFFFFF
            rtp = self.clock.unwrap(raw_timestamp)
            data = bytes(packet)
            self.frames_received += 1
            if self.kind == "audio":
                self._timeline.push(MediaUnit("audio", rtp, data, True))
            elif self._accept_video(raw_timestamp, data):
                self._timeline.push(MediaUnit("video", rtp, data, data[0] & 0x01 == 0))
            else:
                self.frames_dropped += 1
                await self._request_keyframe()

    def _accept_video(self, raw_timestamp: int, data: bytes) -> bool:
        entry = self._frames.pop(raw_timestamp, None)
        valid, keyframe, dimensions = vp8_frame_info(data)
        starts = entry is not None and entry[2] == 1
        continuous = entry is not None and (
            self._last_seq is None or entry[0] == self._last_seq + 1
        )
        if entry is not None:
            self._last_seq = entry[1]
        if not (valid and starts and continuous) and not self._awaiting_keyframe:
            self.gaps += 1
            self._awaiting_keyframe = True
            logger.info("video gap or corrupt frame at rtp %d, waiting for keyframe", raw_timestamp)
        if self._awaiting_keyframe:
            if not (valid and keyframe and starts):
                return False
            self._awaiting_keyframe = False
        if dimensions is not None:
            self.dimensions = dimensions
        return True
