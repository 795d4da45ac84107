"""Progressive WebM writer for already-encoded VP8 and Opus frames (no transcoding).

libavformat's Matroska muxer keeps the open cluster in memory and writes it when the
cluster closes; ``cluster_time_limit`` closes one every ``CLUSTER_MS`` and
``flush_packets`` pushes it to the file at once, so a crash (even ``kill -9``) leaves a
file that demuxes up to the last closed cluster. The segment size stays "unknown" in such
a file, which Matroska readers accept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
from av.container import OutputContainer
from av.stream import Stream

CLUSTER_MS = 1000
"""One cluster per second: at most ~1 s of media is lost on a crash, overhead stays <1 %."""

INTERLEAVE_DELTA_US = 100_000
"""Frames arrive already ordered; keep libavformat's interleaving queue short."""

MS = Fraction(1, 1000)
VIDEO_FRAME_S = 1 / 30
"""Duration credited to the last video frame when computing the file's duration."""
OPUS_FRAME_S = 0.020
OPUS_HEAD = b"OpusHead" + bytes([1, 2]) + (0).to_bytes(2, "little") + (48000).to_bytes(
    4, "little"
) + bytes([0, 0, 0])
"""Version 1, 2 channels, pre-skip 0, 48 kHz, gain 0, mapping family 0."""


class WriteError(Exception):
    """The recording file could not be written (disk full, unwritable path...)."""


@dataclass(slots=True)
class TrackStats:
    frames: int = 0
    first_pts_ms: int | None = None
    last_pts_ms: int = -1
    keyframes: int = 0
    clamped: int = field(default=0)


class WebmWriter:
    """One participant's WebM file: VP8 video and/or Opus audio, times in milliseconds."""

    def __init__(
        self, path: Path, *, video: bool, audio: bool, width: int = 640, height: int = 480
    ) -> None:
        if not (video or audio):
            raise ValueError("a recording needs at least one track")
        self.path = path
        self.tracks: dict[str, TrackStats] = {}
        self._streams: dict[str, Stream] = {}
        try:
            self._container: OutputContainer | None = av.open(
                str(path),
                "w",
                format="webm",
                options={
                    "cluster_time_limit": str(CLUSTER_MS),
                    "flush_packets": "1",
                    "max_interleave_delta": str(INTERLEAVE_DELTA_US),
                },
            )
            if video:
                stream = self._container.add_mux_stream("vp8", width=width, height=height)
                self._add("video", stream)
            if audio:
                self._add("audio", self._opus_stream(self._container))
        except (OSError, av.FFmpegError) as exc:
            raise WriteError(f"cannot create {path}: {exc}") from exc

    @staticmethod
    def _opus_stream(container: OutputContainer) -> Stream:
        """Opus track whose CodecPrivate is an OpusHead with pre-skip 0 (RFC 7845 5.1).

        PyAV only writes CodecPrivate from an opened codec context, so an idle libopus
        context is opened; its encoder pre-skip (6.5 ms) is replaced by 0 because WebRTC
        Opus packets carry no encoder delay, and keeping it would shift audio against video.
        """
        stream = container.add_stream("libopus", rate=48000)
        context = stream.codec_context
        context.layout = "stereo"
        context.open()
        context.extradata = OPUS_HEAD
        return stream

    def _add(self, kind: str, stream: Stream) -> None:
        stream.time_base = MS
        self._streams[kind] = stream
        self.tracks[kind] = TrackStats()

    def write(self, kind: str, pts_s: float, data: bytes, keyframe: bool) -> None:
        """Mux one frame at ``pts_s`` seconds from the start of the file."""
        stream = self._streams.get(kind)
        if stream is None:
            raise ValueError(f"no {kind} track in this recording")
        if self._container is None:
            raise WriteError(f"{self.path} is closed")
        stats = self.tracks[kind]
        pts_ms = max(round(pts_s * 1000), 0)
        if pts_ms <= stats.last_pts_ms:
            stats.clamped += 1
            pts_ms = stats.last_pts_ms + 1
        packet = av.Packet(data)
        packet.stream = stream
        packet.pts = packet.dts = pts_ms
        packet.time_base = MS
        packet.is_keyframe = keyframe
        try:
            self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:
            raise WriteError(f"cannot write {self.path}: {exc}") from exc
        stats.frames += 1
        stats.keyframes += int(keyframe)
        stats.last_pts_ms = pts_ms
        if stats.first_pts_ms is None:
            stats.first_pts_ms = pts_ms

    @property
    def duration_s(self) -> float:
        """From the start of the file to the end of the last frame of any track."""
        ends = [
            stats.last_pts_ms / 1000 + (VIDEO_FRAME_S if kind == "video" else OPUS_FRAME_S)
            for kind, stats in self.tracks.items()
            if stats.frames
        ]
        return max(ends, default=0.0)

    def close(self) -> None:
        """Write the index and final sizes; safe to call twice."""
        container, self._container = self._container, None
        if container is None:
            return
        try:
            container.close()
        except (OSError, av.FFmpegError) as exc:
            raise WriteError(f"cannot finish {self.path}: {exc}") from exc
