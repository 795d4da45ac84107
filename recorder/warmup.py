"""Load at start what a recorder's first call would load (issue 16).

A recorder's first recorded call imported the rest of its media stack (cryptography's
OpenSSL backend and ciphers for DTLS and SRTP, PyAV's remaining stream types), paged in
the code it runs (cryptography's Rust module, libavcodec, libavformat, libopus: ~5.6 MB
of a library's pages read from disk) and set up glibc's first blocks for it: ~6.5 MB of
RSS and ~4,300 objects at once, in the middle of the day for a recorder started as a
replacement, and the first call waited for it. `warm_up` does that work at start: one
peer connection made and closed (its DTLS certificate generated) and one VP8 and one Opus
packet muxed into a WebM file in a scratch directory and hashed in a worker thread as a
closing segment is, the directory deleted after. A failure is
logged and ignored: the first call then does it, as before.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path

from .manifest import sha256_file

log = logging.getLogger(__name__)

# a VP8 key frame header (RFC 6386 9.1: key frame, show, 16x16) and a silent Opus frame
_VP8_KEY = bytes([0x50, 0x01, 0x00, 0x9D, 0x01, 0x2A, 0x10, 0x00, 0x10, 0x00]) + bytes(32)
_OPUS_SILENCE = bytes([0xF8, 0xFF, 0xFE])


async def warm_up() -> bool:
    """True when the media stack was loaded; False (logged) if a step failed."""
    try:
        import cryptography.hazmat.backends.openssl  # DTLS's first handshake
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401  (SRTP, AES-GCM)
        from aiortc import RTCPeerConnection

        pc = RTCPeerConnection()  # generates its DTLS certificate
        await pc.close()
        with tempfile.TemporaryDirectory(prefix="vwin-recorder-warmup-") as scratch:
            path = Path(scratch) / "warm-up.webm"
            _mux_once(path)
            await asyncio.to_thread(sha256_file, path)  # a closing segment's thread
    except Exception:
        log.warning("recorder: warming up the media stack failed; the first call will",
                    exc_info=True)
        return False
    return True


def _mux_once(path: Path) -> None:
    """One frame of each kind through the writer every recording uses."""
    from .webm import WebmWriter

    writer = WebmWriter(path, video=True, audio=True)
    writer.write("video", 0.0, _VP8_KEY, True)
    writer.write("audio", 0.0, _OPUS_SILENCE, True)
    writer.close()
