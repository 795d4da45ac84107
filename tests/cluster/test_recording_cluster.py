"""Recording across nodes: one recorder pool shared through Redis.

Real `vwin serve` nodes (Redis, PostgreSQL) without embedded recorders, real `vwin recorder`
processes each connected to one node, real aiortc parties. A recorder records sessions
handled on any node; a recorder that dies hands its sessions to another one (the parties
offer again, the rest is a second segment, the gap is in the session log).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from server.auth import token_hash
from server.recording.embedded import new_recorder_token
from tests.cluster.procs import Node, RecordingCluster
from tests.cluster.test_failover import OwnRedis
from tests.helpers import Peer, eventually
from tests.recording.analysis import decode_recording
from tests.rtc_peers import (
    VIDEO_FPS,
    RtcClient,
    recorder_handed_over,
    send_to,
    use_loopback_when_alone,
)

pytestmark = pytest.mark.slow
SECONDS = 2.0  # of media per segment
BEFORE_KILL_S = 3.0  # kill -9 loses up to ~2 s (the 1 s hold and the open 1 s cluster)


@pytest.fixture
async def cluster(tmp_path: Path, pg_url: str, key_prefix: str,
                  redis: Redis) -> AsyncIterator[RecordingCluster]:
    del redis  # flushes this test's keys afterwards
    use_loopback_when_alone()
    made = RecordingCluster(tmp_path, pg_url, key_prefix)
    try:
        yield made
    finally:
        await made.close()


def _decodes(cluster: RecordingCluster, row: dict[str, Any], video_s: float) -> None:
    """The file a manager downloads plays: every frame decodes, both codecs, enough video."""
    decoded = decode_recording(cluster.recording_dir / row["path"])
    assert decoded.codecs == {"video": "vp8", "audio": "opus"}
    assert row["codecs"] == decoded.codecs or row["state"] == "interrupted"  # no manifest
    assert decoded.frames["video"] >= video_s * VIDEO_FPS, (row, decoded.frames)
    assert decoded.frames["audio"] > 0


async def test_a_recorder_on_another_node_records_the_call(cluster: RecordingCluster) -> None:
    a, b = await cluster.start("a", "b")
    await cluster.recorder("rec-b", b)
    assert [r["name"] for r in (await cluster.api(a, "/api/recorders"))["recorders"]] == [
        "rec-b"], "node a sees the recorder connected to node b"
    specialist = await cluster.rtc(a, await cluster.specialist("li", {"tax": 1}))
    terminal = await cluster.rtc(a, await cluster.terminal("T1"))
    connected = await cluster.recorded_call(terminal, specialist)
    [recorder] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
    assert recorder == "recorder:rec-b"

    parties = [terminal, specialist]
    await send_to(parties, connected["call_id"], recorder, SECONDS)
    await terminal.send({"type": "call.hangup", "call_id": connected["call_id"]})
    for party in parties:
        await party.recv("call.ended")
        await party.hang_up_media()

    detail = await cluster.session(a, connected["session_id"], {1: "complete"})
    assert {r["participant_id"] for r in detail["recordings"]} == {terminal.me, specialist.me}
    for row in detail["recordings"]:
        assert row["recorder"] == "rec-b"
        _decodes(cluster, row, SECONDS * 0.8)


async def test_killed_recorder_hands_a_cross_node_session_to_the_other(
        cluster: RecordingCluster) -> None:
    a, b = await cluster.start("a", "b")
    await cluster.recorder("rec-1", b)  # first by name: it gets the call
    await cluster.recorder("rec-2", a)
    terminal = await cluster.rtc(a, await cluster.terminal("T1"))
    specialist = await cluster.rtc(b, await cluster.specialist("li", {"tax": 1}))
    connected = await cluster.recorded_call(terminal, specialist)
    call_id, parties = connected["call_id"], [terminal, specialist]
    [first] = [p["id"] for p in connected["participants"] if p["role"] == "recorder"]
    assert first == "recorder:rec-1"
    await send_to(parties, call_id, first, BEFORE_KILL_S)

    cluster.recorders["rec-1"].send_signal(signal.SIGKILL)
    await recorder_handed_over(parties, first, "recorder:rec-2")
    await send_to(parties, call_id, "recorder:rec-2", SECONDS)
    await specialist.send({"type": "call.hangup", "call_id": call_id})
    for party in parties:
        await party.recv("call.ended")
        await party.hang_up_media()

    detail = await cluster.session(b, connected["session_id"], {1: "interrupted", 2: "complete"})
    for row in detail["recordings"]:
        assert row["recorder"] == ("rec-1" if row["segment"] == 1 else "rec-2")
        _decodes(cluster, row, SECONDS * 0.8 if row["segment"] == 2 else 0.5)
    recording = [(e["type"], e["data"].get("recorder"), e["data"].get("reason"))
                 for e in detail["events"] if e["type"].startswith("recording_")]
    assert recording == [
        ("recording_started", "recorder:rec-1", None),
        ("recording_interrupted", "recorder:rec-1", "recorder_lost"),
        ("recording_started", "recorder:rec-2", None),
        ("recording_stopped", "recorder:rec-2", "hangup")]


async def test_a_dead_nodes_recorder_gives_its_sessions_to_another(
        cluster: RecordingCluster) -> None:
    """No media: the node holding the recorder's socket is killed, a survivor takes over."""
    a, b = await cluster.start("a", "b")
    db = await cluster.provision()
    recorders = {}
    for name, node in (("rec-1", b), ("rec-2", a)):
        token = new_recorder_token()
        await db.add_recorder(name, token_hash(token))
        recorders[name] = await cluster.connect(node, token)
        await cluster.wait_recorder(a, name)
    terminal, specialist, queued, connected = await _answered_on(cluster, a)
    assert (await recorders["rec-1"].recv("record.start"))["segment"] == 1

    cluster.kill(b)
    start = await recorders["rec-2"].recv("record.start", timeout=30)
    assert start["call_id"] == queued["call_id"] and start["segment"] == 2
    for party in (terminal, specialist):
        left = await party.recv("participant.left", timeout=30)
        assert left["participant"] == "recorder:rec-1"
        assert (await party.recv("participant.joined"))["participant"]["id"] == "recorder:rec-2"
    detail = await cluster.api(a, f"/api/sessions/{connected['session_id']}")
    assert ("recording_interrupted", "recorder:rec-1") in [
        (e["type"], e["data"].get("recorder")) for e in detail["events"]]


async def test_a_recorder_given_both_nodes_joins_the_survivor_when_its_node_dies(
        cluster: RecordingCluster) -> None:
    """`vwin recorder --url B --url A`: B killed, the recorder is in the pool again through
    A and records A's calls. With B's URL alone it tried the dead node with a backoff
    growing to 15 s (a goal-size day's recorders were out of the pool for 40 s)."""
    a, b = await cluster.start("a", "b")
    await cluster.recorder("rec-1", b, others=[a])
    log = cluster.tmp / "rec-1.log"
    assert f"connected to ws://127.0.0.1:{b.port}/ws" in log.read_text()  # its first URL
    cluster.kill(b)

    async def joined_a() -> bool:
        return f"connected to ws://127.0.0.1:{a.port}/ws" in log.read_text()

    await eventually(joined_a, timeout=30)
    await cluster.wait_recorder(a, "rec-1")
    *_, connected = await _answered_on(cluster, a)
    assert "recorder:rec-1" in [p["id"] for p in connected["participants"]]


async def _answered_on(cluster: RecordingCluster, node: Node
                       ) -> tuple[Peer, Peer, dict[str, Any], dict[str, Any]]:
    """T1 asks for tax on `node`, li answers there: both peers, `call.queued`, and the
    terminal's `call.connected`."""
    terminal = await cluster.connect(node, await cluster.terminal("T1"))
    specialist = await cluster.ready(node, await cluster.specialist("li", {"tax": 1}))
    await terminal.send({"type": "call.request", "queue": "tax"})
    queued = await terminal.recv("call.queued")
    await specialist.recv("call.offered")
    await specialist.send({"type": "call.accept", "call_id": queued["call_id"]})
    return terminal, specialist, queued, await terminal.recv("call.connected", timeout=30)


async def test_offers_sent_while_redis_restarts_reach_the_recorder(
        tmp_path: Path, pg_url: str, key_prefix: str) -> None:
    """Redis restarted (its state kept in the AOF) just as the parties offer their tracks to
    the recorder: the node cannot read the call then, but the offers are relayed once Redis
    is back, and both parties' recordings are complete."""
    use_loopback_when_alone()
    own = OwnRedis(tmp_path)
    await own.start()
    cluster = RecordingCluster(tmp_path, pg_url, key_prefix, redis_url=own.url)
    try:
        [a] = await cluster.start("a")
        await cluster.recorder("rec-1", a)
        terminal = await cluster.rtc(a, await cluster.terminal("T1"))
        specialist = await cluster.rtc(a, await cluster.specialist("li", {"tax": 1}))
        connected = await cluster.recorded_call(terminal, specialist)
        call_id, parties = connected["call_id"], [terminal, specialist]
        own.stop()
        await eventually(lambda: _noticed_redis_gone(a), timeout=60)
        sending = asyncio.create_task(send_to(parties, call_id, "recorder:rec-1", SECONDS,
                                              timeout=60))
        await eventually(lambda: _offered(parties, "recorder:rec-1"))
        await own.start()
        await sending
        await terminal.send({"type": "call.hangup", "call_id": call_id})
        for party in parties:
            await party.recv("call.ended", timeout=30)
            await party.hang_up_media()
        detail = await cluster.session(a, connected["session_id"], {1: "complete"})
        for row in detail["recordings"]:
            _decodes(cluster, row, SECONDS * 0.8)
    finally:
        await cluster.close()
        own.stop()


async def _offered(parties: list[RtcClient], remote: str) -> bool:
    """Every party has sent its offer to `remote` (the link exists once it is made)."""
    return all(remote in party.links for party in parties)


async def _noticed_redis_gone(node: Node) -> bool:
    return "redis unreachable" in node.output()
