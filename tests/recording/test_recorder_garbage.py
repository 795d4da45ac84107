"""A recorded call's garbage goes when the call ends, not at the next heap trim (issue 16)."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection

from recorder.heap import HeapTrimmer
from recorder.participant import ParticipantRecorder
from tests.recording.synthetic import connect_party, wait_until

pytestmark = pytest.mark.slow


def _peer_connections() -> int:
    return sum(isinstance(o, RTCPeerConnection) for o in gc.get_objects())


async def _record_one_party(directory: Path) -> None:
    recorder = ParticipantRecorder(directory, "session-1", "kiosk")
    pc, tracks = await connect_party(recorder, time.time() + 0.5, 2.0)
    await wait_until(lambda: all(t.readyState == "ended" for t in tracks), 30,
                     "the party's tracks to end")
    await asyncio.sleep(0.3)
    await pc.close()
    assert (await recorder.close())["state"] == "finished"


async def test_a_calls_peer_connections_are_freed_when_it_ends_between_trims(
        tmp_path: Path) -> None:
    """A recorder at a steady load trims at most every 30 s; what a call's aiortc and PyAV
    objects hold in reference cycles waited for that trim's collection, and a turnover of
    a dozen parties at once kept ~30 s of ended calls' garbage: the recorder's RSS rose to
    that high-water mark (+20 MB, `bench.recorder_calls --parallel 12`). The trimmer of
    `vwin recorder` (`RecorderService`'s) collects when each call ends."""
    trimmer = HeapTrimmer(collect=True)  # as RecorderService makes it
    gc.disable()  # the collector's own passes are rare in a recorder (its frozen heap)
    try:
        assert trimmer.trim()  # an earlier call's: the next trim is 30 s away
        await _record_one_party(tmp_path)
        assert _peer_connections() >= 1  # held by cycles: reference counting freed none
        trimmer.trim_soon()  # what `RecorderService._stop` does at the call's end
        assert _peer_connections() == 0
    finally:
        gc.enable()
        gc.collect()
