"""Synthetic parties for recorder tests: paced test tracks with a flash and a beep.

Both tracks of a party (and both parties of a session) count time from one shared
``epoch`` on the wall clock, so "the flash frame" and "the first beep sample" have the same
capture time by construction: ``epoch + FLASH_AT_S``.
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
import time
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

WIDTH, HEIGHT, FPS = 320, 240, 15
SAMPLE_RATE, SAMPLES_PER_FRAME = 48000, 960
FLASH_AT_S = 2.0
"""Multiple of both 1/FPS and 20 ms: a video frame and an audio frame start exactly here."""
BEEP_S = 0.2
BEEP_HZ = 1000
DARK, WHITE = 16, 235


class _PacedTrack(MediaStreamTrack):
    def __init__(self, epoch: float, duration_s: float) -> None:
        super().__init__()
        self.epoch = epoch
        self.duration_s = duration_s
        self.index = 0

    async def _pace(self, at_s: float) -> None:
        if at_s >= self.duration_s:
            self.stop()
            raise MediaStreamError
        delay = self.epoch + at_s - time.time()
        if delay > 0:
            await asyncio.sleep(delay)


class FlashVideoTrack(_PacedTrack):
    """Dark frames with a moving bar; one white frame at ``FLASH_AT_S``."""

    kind = "video"

    async def recv(self) -> av.VideoFrame:
        at_s = self.index / FPS
        await self._pace(at_s)
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma = WHITE if self.index == round(FLASH_AT_S * FPS) else DARK
        row = bytearray([luma]) * WIDTH
        bar = (self.index * 8) % WIDTH
        if luma == DARK:
            row[bar : bar + 16] = bytes([200]) * len(row[bar : bar + 16])
        frame.planes[0].update(bytes(row) * HEIGHT)
        for plane in frame.planes[1:]:
            plane.update(bytes([128]) * plane.buffer_size)
        frame.pts = round(at_s * 90000)
        frame.time_base = Fraction(1, 90000)
        self.index += 1
        return frame


class BeepAudioTrack(_PacedTrack):
    """Silence with a 1 kHz beep starting at ``FLASH_AT_S``."""

    kind = "audio"

    async def recv(self) -> av.AudioFrame:
        start = self.index * SAMPLES_PER_FRAME
        await self._pace(start / SAMPLE_RATE)
        beep_from = round(FLASH_AT_S * SAMPLE_RATE)
        beep_to = beep_from + round(BEEP_S * SAMPLE_RATE)
        samples = [
            round(12000 * math.sin(2 * math.pi * BEEP_HZ * n / SAMPLE_RATE))
            if beep_from <= n < beep_to else 0
            for n in range(start, start + SAMPLES_PER_FRAME)
        ]
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES_PER_FRAME)
        frame.planes[0].update(struct.pack(f"<{SAMPLES_PER_FRAME}h", *samples))
        frame.sample_rate = SAMPLE_RATE
        frame.pts = start
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self.index += 1
        return frame


def flash_and_beep(epoch: float, duration_s: float) -> list[MediaStreamTrack]:
    """A party's microphone and camera: a beep and a flash at ``epoch + FLASH_AT_S``."""
    return [BeepAudioTrack(epoch, duration_s), FlashVideoTrack(epoch, duration_s)]


def _vp8_frame_tag_offset(data: bytes) -> int | None:
    """Offset of the VP8 frame tag if ``data`` is the first RTP packet of a VP8 frame."""
    offset = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
    descriptor = data[offset]
    if descriptor & 0x17 != 0x10:
        return None
    offset += 1
    if descriptor & 0x80:
        extension = data[offset]
        offset += 1
        if extension & 0x80:
            offset += 2 if data[offset] & 0x80 else 1
        offset += int(bool(extension & 0x40)) + int(bool(extension & 0x30))
    return offset if offset + 3 <= len(data) else None


def add_lossy_path(
    pc: RTCPeerConnection, loss: float, seed: int, corrupt_every: int = 0
) -> list[int]:
    """Drop ``loss`` of the RTP packets ``pc`` sends (retransmissions too); returns drops.

    With ``corrupt_every`` = n, every n-th VP8 delta frame gets an impossible frame header
    (first partition longer than the frame), as a broken sender or middlebox would send.
    """
    rng = random.Random(seed)
    dropped: list[int] = []
    delta_frames = [0]

    def corrupt(data: bytes) -> bytes:
        offset = _vp8_frame_tag_offset(data) if len(data) > 16 and data[1] & 0x7F == 97 else None
        if offset is None or data[offset] & 0x01 == 0:
            return data
        delta_frames[0] += 1
        if delta_frames[0] % corrupt_every:
            return data
        tag = bytes([data[offset] | 0xE0, 0xFF, 0xFF])
        return data[:offset] + tag + data[offset + 3 :]

    for transceiver in pc.getTransceivers():
        transport: Any = transceiver.sender.transport
        if getattr(transport, "_lossy", False):
            continue
        send = transport._send_rtp

        async def lossy_send(data: bytes, send: Callable[[bytes], Awaitable[None]] = send) -> None:
            is_rtcp = len(data) > 1 and 192 <= data[1] <= 223
            if not is_rtcp and rng.random() < loss:
                dropped.append(len(data))
                return
            if not is_rtcp and corrupt_every:
                data = corrupt(data)
            await send(data)

        transport._send_rtp = lossy_send
        transport._lossy = True
    return dropped


async def connect_party(
    recorder: Any, epoch: float, duration_s: float
) -> tuple[RTCPeerConnection, list[MediaStreamTrack]]:
    """A sending party: offer audio+video to ``recorder`` and apply its answer."""
    pc = RTCPeerConnection()
    tracks = flash_and_beep(epoch, duration_s)
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    answer = await recorder.handle_offer(pc.localDescription.sdp)
    assert answer is not None, f"recorder refused: {recorder.reason}"
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    return pc, tracks


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)
