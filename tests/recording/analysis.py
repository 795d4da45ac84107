"""Read a recording back the way a reviewer would: decode every frame, find flash and beep."""

from __future__ import annotations

import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av

SYNC_TOLERANCE_S = 0.040
"""The goal: audio and video of a party, and the parties of a session, within 40 ms."""
FLASH_LUMA = 128
BEEP_LEVEL = 0.1
"""Beep amplitude is ~0.37 of full scale; silence decodes to ~0."""


@dataclass
class Decoded:
    codecs: dict[str, str] = field(default_factory=dict)
    frames: dict[str, int] = field(default_factory=dict)
    first_s: dict[str, float] = field(default_factory=dict)
    last_s: dict[str, float] = field(default_factory=dict)
    flash_s: float | None = None
    beep_s: float | None = None
    video_times: list[float] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return max(self.last_s.values(), default=0.0)


def _mean_luma(frame: av.VideoFrame) -> float:
    plane = bytes(frame.planes[0])
    sample = plane[:: 97]
    return sum(sample) / len(sample)


def _beep_onset(frame: av.AudioFrame) -> float | None:
    samples = array.array("f", bytes(frame.planes[0]))[: frame.samples]
    for index, value in enumerate(samples):
        if abs(value) > BEEP_LEVEL:
            return float(frame.time or 0) + index / frame.sample_rate
    return None


def decode_recording(path: Path) -> Decoded:
    """Decode every packet; any decoder error propagates and fails the test."""
    result = Decoded()
    with av.open(str(path)) as container:
        for stream in container.streams:
            result.codecs[stream.type] = stream.codec_context.name
            stream.codec_context.options = {"err_detect": "explode"}
        for frame in container.decode(*container.streams):
            kind = "video" if isinstance(frame, av.VideoFrame) else "audio"
            when = float(frame.time or 0)
            result.frames[kind] = result.frames.get(kind, 0) + 1
            result.first_s.setdefault(kind, when)
            result.last_s[kind] = when
            if isinstance(frame, av.VideoFrame):
                result.video_times.append(when)
                if result.flash_s is None and _mean_luma(frame) > FLASH_LUMA:
                    result.flash_s = when
            elif isinstance(frame, av.AudioFrame) and result.beep_s is None:
                assert frame.format.name == "fltp", frame.format.name
                result.beep_s = _beep_onset(frame)
    return result


def segments_settled(rows: list[dict[str, Any]], parties: int, states: dict[int, str]) -> bool:
    """The recordings a session page lists are final: one row per party per expected segment,
    each in its expected state and, once closed, hashed."""
    return len(rows) == parties * len(states) and all(
        r["state"] == states.get(r["segment"]) and (r["sha256"] or r["state"] == "recording")
        for r in rows)
