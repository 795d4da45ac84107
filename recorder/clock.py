"""Map RTP timestamps of every received stream onto the recorder's wall clock.

RFC 3550 6.4.1: each RTCP sender report (SR) pairs an NTP time of the sender's clock with
an RTP timestamp of one stream. All streams of one sender share that NTP clock, so mapping
every frame through its stream's latest SR lines up audio and video of one party (lip
sync). Parties do not share a clock, so ``SenderClock`` estimates each sender's offset to
the recorder's clock as the smallest (local arrival - NTP time) seen over recent SRs (the
offset plus the shortest one-way delay); the two parties then line up as the recorder
heard them.

Before a stream's first SR, ``StreamClock`` falls back to the arrival of its first RTP
packet plus the RTP time elapsed since; the first SR replaces that guess.
"""

from __future__ import annotations

from collections import deque

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from the NTP epoch (1900) to the Unix epoch (1970)."""

OFFSET_WINDOW = 16
"""Sender reports kept for the offset estimate: ~16 s of video SRs, so clock drift is
followed while one late report cannot drag the minimum."""

RTP_WRAP = 1 << 32


def ntp_to_seconds(ntp_timestamp: int) -> float:
    """64-bit NTP timestamp (RFC 5905) to seconds since the Unix epoch."""
    return (ntp_timestamp >> 32) - NTP_UNIX_OFFSET + (ntp_timestamp & 0xFFFFFFFF) / RTP_WRAP


def unwrap_near(timestamp: int, reference: int) -> int:
    """The integer congruent to 32-bit ``timestamp`` closest to the unwrapped ``reference``."""
    delta = (timestamp - reference) % RTP_WRAP
    if delta >= RTP_WRAP // 2:
        delta -= RTP_WRAP
    return reference + delta


class SenderClock:
    """One party's NTP clock as seen from the recorder: ``local = ntp + offset``."""

    def __init__(self) -> None:
        self._samples: deque[float] = deque(maxlen=OFFSET_WINDOW)

    def observe(self, ntp_seconds: float, local_arrival: float) -> None:
        self._samples.append(local_arrival - ntp_seconds)

    @property
    def offset(self) -> float | None:
        return min(self._samples) if self._samples else None

    def to_local(self, ntp_seconds: float) -> float:
        offset = self.offset
        if offset is None:
            raise ValueError("no sender report observed yet")
        return ntp_seconds + offset


class StreamClock:
    """RTP time of one SSRC to local wall-clock seconds."""

    def __init__(self, clock_rate: int, sender: SenderClock) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate must be positive, got {clock_rate}")
        self.clock_rate = clock_rate
        self._sender = sender
        self._reference: int | None = None
        self._anchor: tuple[int, float] | None = None
        self._report: tuple[int, float] | None = None

    @property
    def synchronised(self) -> bool:
        """True once a sender report maps this stream (no longer the arrival guess)."""
        return self._report is not None and self._sender.offset is not None

    def unwrap(self, rtp_timestamp: int) -> int:
        """Unwrap a 32-bit RTP timestamp against the last one seen on this stream."""
        if self._reference is None:
            self._reference = rtp_timestamp
            return rtp_timestamp
        self._reference = unwrap_near(rtp_timestamp, self._reference)
        return self._reference

    def on_first_packet(self, rtp_timestamp: int, local_arrival: float) -> None:
        """Anchor the fallback mapping (used until the first sender report)."""
        if self._anchor is None:
            self._anchor = (self.unwrap(rtp_timestamp), local_arrival)

    def on_sender_report(
        self, rtp_timestamp: int, ntp_timestamp: int, local_arrival: float
    ) -> None:
        ntp_seconds = ntp_to_seconds(ntp_timestamp)
        reference = self._reference if self._reference is not None else rtp_timestamp
        self._report = (unwrap_near(rtp_timestamp, reference), ntp_seconds)
        self._sender.observe(ntp_seconds, local_arrival)

    def to_local(self, rtp: int) -> float | None:
        """Local wall time of unwrapped RTP timestamp ``rtp``, None if nothing anchors it."""
        if self.synchronised:
            assert self._report is not None
            report_rtp, report_ntp = self._report
            ntp = report_ntp + (rtp - report_rtp) / self.clock_rate
            return self._sender.to_local(ntp)
        if self._anchor is None:
            return None
        anchor_rtp, anchor_local = self._anchor
        return anchor_local + (rtp - anchor_rtp) / self.clock_rate
