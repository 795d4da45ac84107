"""Recorders in the signalling protocol (no media): assignment, relay rules, failover, refusal.

The recorders here are plain WebSocket clients saying `hello` with a recorder token, as
`vwin recorder` does; `test_recording_e2e.py` runs the real process with real media. Every
test runs on both routing backends (memory pool, and the pool shared through Redis).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import Callable, Collection
from typing import Any

from aiohttp import web

from server import keys
from server.auth import token_hash
from server.recording.embedded import new_recorder_token
from signaling.identity import Identity, Role
from signaling.recorders import (
    RecordingCatalog,
    Told,
)
from tests.helpers import (
    InCall,
    Peer,
    bearer,
    connect,
    connected_call,
    eventually,
    quick_manager,
    refused,
)

RECORDING = {"enabled": True, "local_recorder": False, "wait_s": 0}  # no wait: test_recording_wait



async def recorder(client: Any, name: str, capacity: int = 4, token: str | None = None
                   ) -> Peer:
    """A recorder's hello (a new recorder; with `token`, that recorder connecting again)."""
    if token is None:
        token = new_recorder_token()
        await client.server.app[keys.DB].add_recorder(name, token_hash(token))
    ws = await client.ws_connect("/ws")
    peer = Peer(ws)
    await peer.send({"type": "hello", "token": token, "capacity": capacity})
    peer.welcome = await peer.recv("welcome")
    assert peer.welcome["role"] == "recorder" and peer.me == f"recorder:{name}"
    peer.token = token
    return peer


async def segment_opened(rec: Peer, call: InCall, app: web.Application) -> None:
    """The recorder reports the kiosk's first segment, and the server has written it (a
    report is carried out beside the socket's loop: a later ping may be answered first)."""
    await rec.send({"type": "record.segment", "call_id": call.call_id,
                    "session_id": call.session_id, "participant_id": call.kiosk_id,
                    "segment": 1, "path": "x/kiosk-1.webm"})

    async def written() -> bool:
        return bool(await app[keys.DB].list_recordings(call.session_id))

    await eventually(written)


async def events_of(client: Any, session_id: str) -> list[dict[str, Any]]:
    app = client.server.app
    response = await client.get(f"/api/sessions/{session_id}",
                                headers=bearer(await quick_manager(app, "boss-" + session_id[:8])))
    assert response.status == 200
    events: list[dict[str, Any]] = (await response.json())["events"]
    return events


async def test_recorded_call_lists_the_recorder_and_relays_to_it(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    rec = await recorder(client, "rec-a")
    call = await connected_call(client)
    start = await rec.recv("record.start")
    assert start["session_id"] == call.session_id and start["segment"] == 1
    assert {p["id"] for p in start["participants"]} == {call.kiosk_id, call.agent_id}

    offer = {"type": "offer", "sdp": "v=0\r\n"}
    await call.kiosk.send({"type": "rtc.description", "call_id": call.call_id, "to": rec.me,
                           "description": offer})
    relayed = await rec.recv("rtc.description")
    assert relayed["from"] == call.kiosk_id and relayed["description"] == offer
    await rec.send({"type": "rtc.description", "call_id": call.call_id, "to": call.agent_id,
                    "description": {"type": "answer", "sdp": "v=0\r\n"}})
    assert (await call.agent.recv("rtc.description"))["from"] == rec.me

    await rec.send({"type": "chat.send", "call_id": call.call_id, "text": "hi"})
    assert (await rec.error("not_in_call"))["refused"] == "chat.send"
    await rec.send({"type": "rtc.description", "call_id": call.call_id, "to": "terminal:T9",
                    "description": offer})
    await rec.error("not_in_call")

    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    stop = await rec.recv("record.stop")
    assert stop["call_id"] == call.call_id and stop["reason"] == "hangup"
    types = [e["type"] for e in await events_of(client, call.session_id)]
    assert types.index("recording_started") < types.index("ended") < types.index(
        "recording_stopped")


async def test_a_segment_reported_after_its_call_ended_is_kept(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The report of a segment the recorder opened may be taken after the call ended (a
    slow catalog write before it, a short call): its row is kept and the manifest closes
    it, since the file holds the party's media; a recorder never told to record the
    session is still refused."""
    client = await aiohttp_client(make_app(recording=RECORDING))
    app = client.server.app
    rec = await recorder(client, "rec-a")
    other = await recorder(client, "rec-b")
    call = await connected_call(client)
    await rec.recv("record.start")
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await rec.recv("record.stop")
    report = {"call_id": call.call_id, "session_id": call.session_id,
              "participant_id": call.kiosk_id}
    await other.send({"type": "record.segment", **report, "segment": 1, "path": "y/k-1.webm"})
    assert (await other.error("not_recording"))["refused"] == "record.segment"
    await rec.send({"type": "record.segment", **report, "segment": 1, "path": "x/k-1.webm"})
    await rec.send({"type": "record.manifest", **report, "manifest": {
        "segment": 1, "state": "finished", "path": "x/k-1.webm", "duration_s": 2.0,
        "size_bytes": 1000, "sha256": "0" * 64, "codecs": {"video": "vp8"}}})

    async def closed() -> bool:
        rows = await app[keys.DB].list_recordings(call.session_id)
        return [(r.recorder, r.state) for r in rows] == [("rec-a", "complete")]

    await eventually(closed)


async def test_reports_sent_again_are_taken_as_done(
        aiohttp_client: Any, make_app: Callable[..., web.Application],
        database_url: str) -> None:
    """A recorder sends its recent reports again on a new connection (its node may have
    died with them unstored): those stored already are neither refused nor logged twice;
    a manifest that does not match the closed segment is still refused."""
    client = await aiohttp_client(make_app(storage_url=database_url, recording=RECORDING))
    app = client.server.app
    rec = await recorder(client, "rec-a")
    call = await connected_call(client)
    await rec.recv("record.start")
    report = {"call_id": call.call_id, "session_id": call.session_id,
              "participant_id": call.kiosk_id}
    opened = {"type": "record.segment", **report, "segment": 1, "path": "x/k-1.webm"}
    failed = {"type": "record.manifest", **report, "manifest": {
        "segment": 1, "state": "failed", "reason": "disk full", "path": "x/k-1.webm",
        "duration_s": 1.0, "size_bytes": 10, "sha256": "1" * 64}}
    for _ in range(2):
        await rec.send(opened)
        await rec.send(failed)
    other = {**failed, "manifest": {**failed["manifest"], "sha256": "2" * 64}}
    await rec.send(other)  # after the copies (one call's reports run in order)
    assert (await rec.error("not_recording"))["refused"] == "record.manifest"
    await rec.send({"type": "ping"})
    await rec.recv("pong")  # a second refusal, sent before the first's, would be read by now
    assert [e for e in rec.inbox if e["type"] == "error"] == []
    [row] = await app[keys.DB].list_recordings(call.session_id)
    assert (row.state, row.sha256, row.error) == ("failed", "1" * 64, "disk full")
    types = [e["type"] for e in await events_of(client, call.session_id)]
    assert types.count("recording_failed") == 1


async def test_call_connected_says_recorded(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    await recorder(client, "rec-a")
    app = client.server.app
    from tests.helpers import add_terminal, quick_specialist, specialist_ready

    agent = await specialist_ready(client, await quick_specialist(app, "li", {"tax": 1}))
    kiosk = await connect(client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    queued = await kiosk.recv("call.queued")
    await agent.recv("call.offered")
    await agent.send({"type": "call.accept", "call_id": queued["call_id"]})
    for peer in (kiosk, agent):
        connected = await peer.recv("call.connected")
        assert connected["recording"] is True
        roles = {p["id"]: p["role"] for p in connected["participants"]}
        assert roles["recorder:rec-a"] == "recorder"


async def test_required_recording_without_recorder_refuses_the_call(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording={**RECORDING, "required": True}))
    app = client.server.app
    from tests.helpers import add_terminal, quick_specialist, specialist_ready

    await specialist_ready(client, await quick_specialist(app, "li", {"tax": 1}))
    kiosk = await connect(client, await add_terminal(app, "T1"))
    await kiosk.send({"type": "call.request", "queue": "tax"})
    rejected = await kiosk.recv("call.rejected")
    assert rejected["reason"] == "recorder_unavailable"


async def test_optional_recording_without_recorder_goes_on_logged_unrecorded(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    call = await connected_call(client)
    events = await events_of(client, call.session_id)
    failed = [e for e in events if e["type"] == "recording_failed"]
    assert [e["data"]["reason"] for e in failed] == ["no_recorder"]
    # A recorder that joins later picks the session up; the parties are told to offer.
    rec = await recorder(client, "late")
    assert (await rec.recv("record.start"))["call_id"] == call.call_id
    joined = await call.kiosk.recv("participant.joined")
    assert joined["participant"] == {"id": rec.me, "role": "recorder", "name": "late",
                                     "segment": 1}


async def test_lost_recorder_hands_its_sessions_on(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    app = client.server.app
    first = await recorder(client, "rec-a", capacity=1)
    call = await connected_call(client)
    await first.recv("record.start")
    await segment_opened(first, call, app)
    second = await recorder(client, "rec-b", capacity=1)
    await first.close()
    start = await second.recv("record.start")
    assert start["call_id"] == call.call_id and start["segment"] == 2
    for party in (call.kiosk, call.agent):
        left = await party.recv("participant.left")
        assert left["participant"] == first.me and left["reason"] == "recorder_lost"
        assert (await party.recv("participant.joined"))["participant"]["id"] == second.me
    # The old recorder's relay is closed; the new one's is open.
    await call.kiosk.send({"type": "rtc.description", "call_id": call.call_id,
                           "to": first.me, "description": {"type": "offer", "sdp": ""}})
    await call.kiosk.error("not_in_call")
    [row] = await app[keys.DB].list_recordings(call.session_id)
    assert row.state == "interrupted" and row.recorder == "rec-a"
    types = [e["type"] for e in await events_of(client, call.session_id)]
    assert types.count("recording_started") == 2
    assert types.index("recording_interrupted") < len(types) - 1


async def test_recorder_tokens_are_checked(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording=RECORDING))
    error, code = await refused(client, {"type": "hello", "token": new_recorder_token()})
    assert error["code"] == "unauthorized" and code == 4401


async def test_a_server_that_does_not_record_refuses_recorders(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    off = await aiohttp_client(make_app())
    token = new_recorder_token()
    await off.server.app[keys.DB].add_recorder("rec-x", token_hash(token))
    error, code = await refused(off, {"type": "hello", "token": token})
    assert error["code"] == "forbidden" and code == 4403


class _HeldCatalog:
    """The node's own catalog, each `segment_started` held until `release` is set: the
    moment in which another node may give the recorder up (its node taken for dead)."""

    def __init__(self, catalog: RecordingCatalog) -> None:
        self.catalog = catalog
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def segment_started(self, **kwargs: Any) -> None:
        self.entered.set()
        await self.release.wait()
        await self.catalog.segment_started(**kwargs)

    async def segment_closed(self, **kwargs: Any) -> bool:
        return await self.catalog.segment_closed(**kwargs)

    async def segments_interrupted(self, *, session_id: str | None, recorder: str) -> int:
        return await self.catalog.segments_interrupted(session_id=session_id,
                                                       recorder=recorder)

    async def recorded_by(self, session_id: str, recorder: str) -> bool:
        return await self.catalog.recorded_by(session_id, recorder)

    async def unnamed_gaps(self, recorder: str, since: dt.datetime,
                           also: Collection[str] = ()) -> list[Told]:
        return await self.catalog.unnamed_gaps(recorder, since, also)


async def test_a_segment_written_while_its_recorder_is_given_up_ends_interrupted(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The survivors hand a recorder's sessions on (`backends.dead`: they took its node for
    dead) while its node is still writing the row of a segment it reported: the row must
    not stay `recording` for ever, since no manifest of a given-up recorder is awaited."""
    client = await aiohttp_client(make_app(recording=RECORDING))
    app = client.server.app
    board = app[keys.BOARD]
    first = await recorder(client, "rec-a", capacity=1)
    second = await recorder(client, "rec-b", capacity=1)
    call = await connected_call(client)
    await first.recv("record.start")
    setup = board.services.recording
    assert setup is not None and setup.catalog is not None
    held = _HeldCatalog(setup.catalog)
    board.services = dataclasses.replace(
        board.services, recording=dataclasses.replace(setup, catalog=held))

    await first.send({"type": "record.segment", "call_id": call.call_id,
                      "session_id": call.session_id, "participant_id": call.kiosk_id,
                      "segment": 1, "path": "x/kiosk-1.webm"})
    await asyncio.wait_for(held.entered.wait(), 30)
    presence = await board.services.presences.get(first.me)
    assert presence is not None
    await board.disconnect(Identity(role=Role.RECORDER, id="rec-a", name="rec-a"),
                           presence.epoch, object())  # what a survivor does for a dead node
    assert (await second.recv("record.start"))["segment"] == 2
    held.release.set()

    async def ended() -> bool:  # the segment's report is carried out beside the socket
        rows = await app[keys.DB].list_recordings(call.session_id)
        return [(row.recorder, row.state) for row in rows] == [("rec-a", "interrupted")]

    await eventually(ended)


async def test_a_call_whose_recorder_assignment_was_lost_gets_one_when_a_party_resumes(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The node that connected the call died between connecting it and giving it a
    recorder (the pool holds no recorder for it, and it is not waiting for one): the
    party that resumes the call brings it a recorder, and everyone is told to offer."""
    client = await aiohttp_client(make_app(recording=RECORDING))
    board = client.server.app[keys.BOARD]
    rec = await recorder(client, "rec-a")
    call = await connected_call(client)
    await rec.recv("record.start")
    setup = board.services.recording
    assert setup is not None
    await setup.pool.release(call.call_id)  # what the dead node left behind

    await call.kiosk.close()
    kiosk = await connect(client, call.kiosk_token, resume=call.kiosk.welcome["resume"])
    connected = await kiosk.recv("call.connected")
    assert connected["resumed"] and connected["recording"]
    assert rec.me in [p["id"] for p in connected["participants"]]
    start = await rec.recv("record.start")
    assert (start["call_id"], start["segment"]) == (call.call_id, 1)
    assert (await call.agent.recv("participant.joined"))["participant"]["id"] == rec.me


async def test_a_recorder_lost_before_its_last_manifest_leaves_no_segment_open(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The call ended (`record.stop` sent, the pool no longer holds it) and the recorder
    died before it reported the closed segment: the segment ends `interrupted`, not
    `recording` for ever."""
    client = await aiohttp_client(make_app(recording=RECORDING))
    app = client.server.app
    rec = await recorder(client, "rec-a")
    call = await connected_call(client)
    await rec.recv("record.start")
    await segment_opened(rec, call, app)
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    assert (await rec.recv("record.stop"))["call_id"] == call.call_id
    await rec.close()  # killed before its manifest went out

    async def settled() -> bool:
        [row] = await app[keys.DB].list_recordings(call.session_id)
        return row.state != "recording"

    await eventually(settled)
    [row] = await app[keys.DB].list_recordings(call.session_id)
    assert (row.recorder, row.state) == ("rec-a", "interrupted")


def _recorders(connected: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["id"], p["segment"]) for p in connected["participants"]
            if p["role"] == "recorder"]


async def test_a_party_resuming_after_its_recorder_reconnected_hears_the_new_segment(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The goal-size day's `c_3442f76284025877`: the kiosk's socket went with node 1, and
    its recorder, on node 1 too, reconnected meanwhile and recorded segment 2. The resumed
    `call.connected` listed the same recorder, the kiosk kept its link of segment 1
    (dead on the recorder's side), and its media was never recorded. The listing names
    the segment, so a party sees that its link is for an old one."""
    client = await aiohttp_client(make_app(recording=RECORDING))
    rec = await recorder(client, "rec-a")
    call = await connected_call(client)
    assert (await rec.recv("record.start"))["segment"] == 1

    await call.kiosk.close()
    again = await recorder(client, "rec-a", token=rec.token)  # its sessions handed on
    assert (await again.recv("record.start"))["segment"] == 2
    kiosk = await connect(client, call.kiosk_token, resume=call.kiosk.welcome["resume"])
    connected = await kiosk.recv("call.connected")
    assert connected["resumed"] and _recorders(connected) == [(again.me, 2)]
    joined = await call.agent.recv("participant.joined")
    assert (joined["participant"]["id"], joined["participant"]["segment"]) == (again.me, 2)
