"""Fails loudly when aiortc's internals that the recorder's passthrough hook uses change."""

from __future__ import annotations

import threading
from importlib.metadata import version

from aiortc.codecs import get_decoder
from aiortc.codecs.vpx import Vp8Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from server.recording import passthrough
from server.recording.passthrough import receiver_module

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)


def test_aiortc_is_in_the_tested_range() -> None:
    major, minor = (int(part) for part in version("aiortc").split(".")[:2])
    assert (major, minor) == (1, 16), f"passthrough tested with aiortc {passthrough.AIORTC_TESTED}"


def test_every_internal_the_hook_uses_is_present() -> None:
    passthrough.check_compatibility()


def test_install_only_affects_registered_decoder_threads() -> None:
    passthrough.install()
    passthrough.install()
    assert receiver_module.get_decoder is not get_decoder
    assert isinstance(receiver_module.get_decoder(VP8), Vp8Decoder)

    chosen: list[object] = []

    def decoder_thread() -> None:
        chosen.append(receiver_module.get_decoder(VP8))

    thread = threading.Thread(target=decoder_thread)
    passthrough._passthrough_threads.add(thread)
    thread.start()
    thread.join()
    [decoder] = chosen
    assert isinstance(decoder, passthrough.PassthroughDecoder)
    [packet] = decoder.decode(JitterFrame(data=b"\x10\x02\x00", timestamp=3000))
    assert bytes(packet) == b"\x10\x02\x00" and packet.pts == 3000
