"""Recording end to end: two aiortc parties through a real `vwin serve` and its embedded
recorder, each sending a flash and a beep captured at the same instant.

What a reviewer checks in the recordings: in each party's file the flash and the beep are
within 40 ms of each other, and the two parties' flashes, placed on one timeline by their
`started_at_unix` (as the manager's player does), are within 40 ms too. And with 5 % of
the packets each party sends to the recorder lost on the way, every file still decodes
and its video recovers after each loss.
"""

from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiortc.mediastreams import MediaStreamTrack

from tests.cluster.procs import RecordingCluster
from tests.recording.analysis import SYNC_TOLERANCE_S, decode_recording
from tests.recording.synthetic import FLASH_AT_S, add_lossy_path, flash_and_beep, wait_until
from tests.rtc_peers import use_loopback_when_alone

pytestmark = pytest.mark.slow
LEAD_S = 1.5  # capture starts this long after the offers: time to connect, so none is late
DURATION_S = 3.0  # of capture; the flash and the beep are at FLASH_AT_S
LOSSY_S = 6.0  # of capture with loss: several losses, each to recover from


@pytest.fixture
async def cluster(tmp_path: Path, fresh_pg_url: str,
                  redis_key_prefix: str) -> AsyncIterator[RecordingCluster]:
    """One `vwin serve` recording with its embedded recorder (the default set-up)."""
    use_loopback_when_alone()
    made = RecordingCluster(tmp_path, fresh_pg_url, redis_key_prefix, local_recorder=True)
    try:
        yield made
    finally:
        await made.close()


class RecordedCall:
    """A terminal and a specialist in a call recorded by one `vwin serve`'s own recorder,
    each sending a flash and a beep (the same capture epoch) to the recorder only."""

    def __init__(self, cluster: RecordingCluster) -> None:
        self.cluster = cluster

    async def run(self, duration_s: float, loss: float = 0.0) -> dict[str, Any]:
        """Send for `duration_s` (each party losing `loss` of its RTP, every 25th VP8
        delta frame broken too), hang up; returns the session with its recordings."""
        cluster = self.cluster
        [node] = await cluster.start("n1")
        await cluster.wait_recorder(node, "local-n1")
        self.terminal = await cluster.rtc(node, await cluster.terminal("T1"))
        self.specialist = await cluster.rtc(node, await cluster.specialist("li", {"tax": 1}))
        parties = (self.terminal, self.specialist)
        connected = await cluster.recorded_call(*parties)
        [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
        self.epoch = time.time() + LEAD_S
        sending: list[MediaStreamTrack] = []
        self.dropped: list[list[int]] = []
        for seed, party in enumerate(parties):
            tracks = flash_and_beep(self.epoch, duration_s)
            sending += tracks
            party.media = functools.partial(list, tracks)  # these tracks, on its one link
            link = await party.call(connected["call_id"], recorder)
            if loss:
                self.dropped.append(add_lossy_path(link.pc, loss, seed=seed, corrupt_every=25))
        await wait_until(lambda: all(t.readyState == "ended" for t in sending),
                         timeout=LEAD_S + duration_s + 30, what="both parties to send")
        await self.terminal.send({"type": "call.hangup", "call_id": connected["call_id"]})
        for party in parties:
            await party.recv("call.ended")
            await party.hang_up_media()
        detail = await cluster.session(node, connected["session_id"], {1: "complete"})
        assert {row["participant_id"] for row in detail["recordings"]} == {
            self.terminal.me, self.specialist.me}
        return detail


async def test_flash_and_beep_line_up_for_each_party_and_across_parties(
        cluster: RecordingCluster) -> None:
    call = RecordedCall(cluster)
    detail = await call.run(DURATION_S)
    flashes: dict[str, float] = {}
    for row in detail["recordings"]:
        decoded = decode_recording(cluster.recording_dir / row["path"])
        party = row["participant_id"]
        assert decoded.flash_s is not None and decoded.beep_s is not None, party
        offset_ms = 1000 * (decoded.flash_s - decoded.beep_s)
        assert abs(offset_ms) <= 1000 * SYNC_TOLERANCE_S, f"{party}: A/V {offset_ms:.1f} ms"
        flashes[party] = row["started_at_unix"] + decoded.flash_s
    terminal, specialist = call.terminal.me, call.specialist.me
    apart_ms = 1000 * (flashes[terminal] - flashes[specialist])
    assert abs(apart_ms) <= 1000 * SYNC_TOLERANCE_S, f"parties {apart_ms:.1f} ms apart"
    for at in flashes.values():  # where it was sent, on the recorder's wall clock
        assert abs(at - (call.epoch + FLASH_AT_S)) < 0.5, (at, call.epoch + FLASH_AT_S)


async def test_five_percent_loss_through_the_server_decodes_and_recovers(
        cluster: RecordingCluster) -> None:
    """Each party loses 5 % of the RTP it sends to the recorder (retransmissions too), and
    every 25th VP8 delta frame arrives broken, as a faulty middlebox would pass it."""
    call = RecordedCall(cluster)
    detail = await call.run(LOSSY_S, loss=0.05)
    assert all(len(d) >= 10 for d in call.dropped), [len(d) for d in call.dropped]
    for row in detail["recordings"]:
        path = cluster.recording_dir / row["path"]
        decoded = decode_recording(path)  # every frame: an undecodable one raises
        manifest = json.loads(path.with_suffix(".json").read_text())
        party = row["participant_id"]
        assert decoded.codecs == {"video": "vp8", "audio": "opus"}, party
        assert decoded.last_s["video"] > LOSSY_S - 1.0, f"{party}: video did not recover"
        assert decoded.frames["video"] >= 0.6 * 15 * LOSSY_S, (party, decoded.frames)
        freeze = max(b - a for a, b in itertools.pairwise(decoded.video_times))
        assert freeze < 1.0, f"{party}: video froze {freeze:.2f} s after a loss"
        assert decoded.last_s["audio"] > LOSSY_S - 1.0, f"{party}: audio did not go on"
        # Lost packets were asked for again; the frames broken on the way were gaps, each
        # answered with a keyframe request (and one at the start).
        assert manifest["retransmission_requests"] >= 1, manifest
        assert manifest["gaps"] >= 1, manifest
        assert manifest["keyframe_requests"] >= 1 + manifest["gaps"], manifest
