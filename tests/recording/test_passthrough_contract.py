"""Fails loudly when aiortc's internals that the recorder's passthrough hook uses change."""

from __future__ import annotations

import asyncio
import queue
import threading
from fractions import Fraction
from importlib.metadata import version

import av
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from recorder import passthrough
from recorder.passthrough import receiver_module

aiortc_decoder_worker = passthrough._aiortc_decoder_worker

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


def test_aiortc_is_in_the_tested_range() -> None:
    major, minor = (int(part) for part in version("aiortc").split(".")[:2])
    assert (major, minor) == (1, 16), f"passthrough tested with aiortc {passthrough.AIORTC_TESTED}"


def test_every_internal_the_hook_uses_is_present() -> None:
    passthrough.check_compatibility()


def _vp8_keyframe() -> bytes:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 64, 48, "yuv420p"
    encoder.time_base = Fraction(1, 15)
    picture = av.VideoFrame(64, 48, "yuv420p")
    for plane in picture.planes:
        plane.update(bytes([128]) * plane.buffer_size)
    picture.pts = 0
    return b"".join(bytes(p) for p in [*encoder.encode(picture), *encoder.encode(None)])


async def test_tapped_receivers_skip_the_thread_and_others_still_decode() -> None:
    passthrough.install()
    passthrough.install()
    assert receiver_module.decoder_worker is not aiortc_decoder_worker
    loop = asyncio.get_running_loop()
    keyframe = _vp8_keyframe()

    # An untapped receiver's worker decodes as aiortc's does.
    decoded: asyncio.Queue[object] = asyncio.Queue()
    tasks: queue.Queue[object] = queue.Queue()
    thread = threading.Thread(target=receiver_module.decoder_worker,
                              args=(loop, tasks, decoded, threading.Event()))
    thread.start()
    tasks.put((VP8, JitterFrame(data=keyframe, timestamp=3000)))
    tasks.put(None)
    frame = await asyncio.wait_for(decoded.get(), 30)
    assert isinstance(frame, av.VideoFrame) and (frame.width, frame.height) == (64, 48)
    assert await asyncio.wait_for(decoded.get(), 30) is None
    await asyncio.to_thread(thread.join)

    # A tapped receiver's worker returns at once; frames reach the track encoded, in order.
    track: asyncio.Queue[object] = asyncio.Queue()
    inline = passthrough.InlineDecoderQueue(track)
    receiver_module.decoder_worker(loop, inline, track, threading.Event())
    inline.put((VP8, JitterFrame(data=keyframe, timestamp=3000)))
    inline.put(None)
    packet = track.get_nowait()
    assert isinstance(packet, av.Packet)
    assert bytes(packet) == keyframe and packet.pts == 3000
    assert track.get_nowait() is None


class _EveryPacket:
    """Stands for aiortc's estimator while it sees over-use: a new target on every packet."""

    def add(self, **packet: int) -> tuple[int, list[int]]:
        return 500_000 - packet["arrival_time_ms"], [packet["ssrc"]]


def test_remb_is_sent_at_most_every_250_ms() -> None:
    throttled = passthrough.ThrottledBitrateEstimator(_EveryPacket())
    sent = [ms for ms in range(0, 1000, 10)
            if throttled.add(abs_send_time=0, arrival_time_ms=ms, payload_size=1200, ssrc=7)]
    assert sent == [0, 250, 500, 750]
