"""Real aiortc parties recorded by ParticipantRecorder (no server), read back with PyAV."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from pathlib import Path

import pytest
from aiortc import RTCPeerConnection, RTCRtpSender

from recorder.participant import OfferRejected, ParticipantRecorder, RecordingState
from tests.recording.analysis import decode_recording
from tests.recording.synthetic import add_lossy_path, connect_party, flash_and_beep, wait_until

pytestmark = pytest.mark.slow

DURATION_S = 4.0


async def record_parties(
    directory: Path, names: list[str], duration_s: float, loss: float = 0.0,
    corrupt_every: int = 0,
) -> list[dict[str, object]]:
    """Record each named party for ``duration_s`` with one shared capture epoch."""
    recorders = [ParticipantRecorder(directory, "session-1", name) for name in names]
    epoch = time.time() + 1.0
    parties = [await connect_party(r, epoch, duration_s) for r in recorders]
    if loss:
        for index, (pc, _) in enumerate(parties):
            add_lossy_path(pc, loss, seed=index, corrupt_every=corrupt_every)
    tracks = [track for _, party_tracks in parties for track in party_tracks]
    await wait_until(lambda: all(t.readyState == "ended" for t in tracks),
                     timeout=duration_s + 20, what="senders to finish")
    await asyncio.sleep(0.3)  # let the last packets cross the loopback before hanging up
    for pc, _ in parties:
        await pc.close()
    return [await recorder.close() for recorder in recorders]


def assert_complete(manifest: dict[str, object], duration_s: float) -> None:
    """The checks a reviewer makes on one file (its A/V sync: `test_recording_sync.py`)."""
    assert manifest["state"] == "finished", manifest
    path = Path(str(manifest["path"]))
    data = path.read_bytes()
    assert manifest["size_bytes"] == len(data)
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert json.loads(path.with_suffix(".json").read_text()) == manifest
    decoded = decode_recording(path)
    assert decoded.codecs == {"video": "vp8", "audio": "opus"}
    assert manifest["codecs"] == {"video": "vp8", "audio": "opus"}
    assert abs(decoded.duration_s - duration_s) <= 0.5, decoded.duration_s
    assert abs(float(str(manifest["duration_s"])) - duration_s) <= 0.5
    assert decoded.frames["video"] == manifest["frames"]["video"]  # type: ignore[index]


async def test_one_party_recording_decodes_with_its_manifest(tmp_path: Path) -> None:
    [manifest] = await record_parties(tmp_path, ["kiosk"], DURATION_S)
    assert_complete(manifest, DURATION_S)
    path = Path(str(manifest["path"]))
    assert path.name == "kiosk-1.webm"
    assert path.parent.name == "session-1"
    assert path.relative_to(tmp_path).parts[0] == str(manifest["started_at"])[:4]
    assert manifest["synchronised"] == {"audio": True, "video": True}
    assert manifest["keyframe_requests"] >= 1  # type: ignore[operator]


async def test_five_percent_loss_still_decodes_and_recovers(tmp_path: Path) -> None:
    """5 % of RTP dropped (retransmissions too) and every 25th VP8 delta frame corrupted."""
    duration_s = 6.0
    [manifest] = await record_parties(
        tmp_path, ["kiosk"], duration_s, loss=0.05, corrupt_every=25
    )
    assert manifest["state"] == "finished"
    decoded = decode_recording(Path(str(manifest["path"])))  # every frame, errors explode
    assert decoded.codecs == {"video": "vp8", "audio": "opus"}
    assert decoded.last_s["video"] > duration_s - 1.0, "video did not recover to the end"
    assert decoded.frames["video"] >= 0.6 * 15 * duration_s
    gaps = int(str(manifest["gaps"]))
    assert gaps >= 2, manifest
    assert int(str(manifest["keyframe_requests"])) >= 1 + gaps, manifest
    assert int(str(manifest["retransmission_requests"])) >= 1, manifest
    times = decoded.video_times
    longest_freeze = max(b - a for a, b in itertools.pairwise(times))
    assert longest_freeze < 1.0, f"video froze {longest_freeze:.2f} s after a loss"


async def test_unwritable_directory_fails_with_a_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the recording directory should be")
    recorder = ParticipantRecorder(blocker, "session-1", "kiosk")
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    assert await recorder.handle_offer(pc.localDescription.sdp) is None
    assert recorder.state == RecordingState.FAILED
    assert recorder.reason is not None and "Not a directory" in recorder.reason
    assert str(blocker) in recorder.reason
    manifest = await recorder.close()
    assert await recorder.close() == manifest
    assert manifest["state"] == "failed" and manifest["sha256"] is None
    await pc.close()


async def test_offer_without_vp8_is_rejected(tmp_path: Path) -> None:
    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    capabilities = RTCRtpSender.getCapabilities("video")
    assert capabilities is not None
    transceiver.setCodecPreferences(
        [c for c in capabilities.codecs if c.mimeType.lower() == "video/h264"]
    )
    await pc.setLocalDescription(await pc.createOffer())
    recorder = ParticipantRecorder(tmp_path, "session-1", "kiosk")
    with pytest.raises(OfferRejected, match="video/vp8"):
        await recorder.handle_offer(pc.localDescription.sdp)
    with pytest.raises(OfferRejected, match="no audio or video"):
        await recorder.handle_offer("v=0\r\nnot sdp")
    assert recorder.state == RecordingState.NEW
    await recorder.close()
    await pc.close()


@pytest.mark.parametrize("bad", ["../escape", "", "a/b", ".hidden"])
def test_ids_that_would_leave_the_directory_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        ParticipantRecorder(tmp_path, bad, "kiosk")
    with pytest.raises(ValueError, match="invalid"):
        ParticipantRecorder(tmp_path, "session-1", bad)


async def test_a_party_that_never_got_the_answer_still_has_its_segment_closed(
        tmp_path: Path) -> None:
    """The recorder answered, but the answer was lost on the way (with a node killed): the
    party never connects. Closing the segment (`record.stop`) must still finish and report
    it, or the call's later messages wait behind it and the segment stays open for ever."""
    pc = RTCPeerConnection()
    for track in flash_and_beep(time.time(), DURATION_S):
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    recorder = ParticipantRecorder(tmp_path, "session-1", "kiosk")
    assert await recorder.handle_offer(pc.localDescription.sdp) is not None
    assert recorder.state == RecordingState.RECORDING
    manifest = await asyncio.wait_for(recorder.close(), 30)
    assert manifest["state"] == "finished" and manifest["sha256"] is None  # nothing came
    await pc.close()
