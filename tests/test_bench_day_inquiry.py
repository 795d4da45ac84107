"""The day's report tells what happened to a call it names: the ledger, each party's links to
the recorder, the log, the segments and the faults, in order (a failed day in CI leaves
nothing else behind)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.day_checks import LedgerView
from bench.day_inquiry import timelines
from bench.day_monitor import Fault
from server.recording.catalog import FileCatalog
from server.storage.db import Database
from signaling import messages as m
from signaling.memory import MemoryRouter
from signaling.messages import RecordingManifest
from signaling.recorders import MemoryRecorderPool, RecordingSetup
from tests.switchboard import conftest as desks
from tests.switchboard.conftest import ALICE, QUEUES, RECORDER, Desk, make_desk


@pytest.fixture
async def desk(database: Database, tmp_path: Path) -> AsyncIterator[Desk]:
    router = MemoryRouter(QUEUES)
    setup = RecordingSetup(pool=MemoryRecorderPool(router),
                           catalog=FileCatalog(database, tmp_path))
    async for made in make_desk(database, router=router, recording=setup):
        yield made


async def test_an_unrecorded_call_is_told_as_one_timeline(desk: Desk, database_url: str
                                                          ) -> None:
    requested = time.time()
    _, alice, offered = await desks.offered_recorded(desk)
    call_id = str(offered["call_id"])
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=offered["offer"]))
    session_id = [f for f in alice.frames if f["type"] == "call.connected"][-1]["session_id"]
    party = "specialist:alice"
    await desk.drive(RECORDER, m.RecordSegment(call_id=call_id, session_id=session_id,
                                               participant_id=party, segment=1,
                                               path="x/alice-1.webm"))
    await desk.drive(RECORDER, m.RecordManifest(
        call_id=call_id, session_id=session_id, participant_id=party,
        manifest=RecordingManifest(segment=1, state="finished", path="x/alice-1.webm")))
    now = time.time()
    kiosk_link = {"recorder": "recorder:rec1", "offered": now + 0.1, "sent": 1,
                  "answered": None, "ice": "new", "closed": now + 3.0}
    ledger = LedgerView(
        visits=[{"call_id": call_id, "terminal": "K1", "requested": requested - 1.0,
                 "answered": now + 0.05, "links": [kiosk_link]}],
        answers=[{"call_id": call_id, "specialist": "alice", "t": now + 0.04,
                  "resumed": False}],
        media=[{"call_id": call_id, "party": "alice", "links": [
            {"recorder": "recorder:rec1", "offered": now + 0.2, "sent": 2,
             "answered": now + 0.9, "ice": "checking", "closed": now + 3.1}]}])
    faults = [Fault("Redis restarted (AOF)", now + 0.15, now + 0.6),
              Fault("long before", now - 600, now - 590)]

    lines = await timelines(database_url, [call_id, "c_unknown"], ledger, faults)

    assert lines[0].startswith(f"  timeline of {call_id} (s from its first entry, ")
    said = [line.split(maxsplit=1)[1] for line in lines[1:]]
    assert said[0] == "kiosk K1: requested"
    assert "kiosk K1 offers to recorder:rec1" in said
    assert "kiosk K1 closes its link to recorder:rec1: offer sent 1x, ICE new" in said
    assert "desk alice hears recorder:rec1's answer" in said
    assert "desk alice closes its link to recorder:rec1: offer sent 2x, ICE checking" in said
    assert "desk alice hears call.connected" in said
    assert any(s.startswith("log answered") for s in said)
    assert any(s.startswith("log recording_started recorder=recorder:rec1 segment=1")
               for s in said), said
    segment = f"segment {party[:12]}#1@rec1"
    assert said.index(f"{segment} opened") < said.index(
        f"{segment} closed complete, 0 bytes, 0.0 s")
    # the faults of those seconds, in their place; not those long before
    assert said.index("kiosk K1 offers to recorder:rec1") < said.index(
        "FAULT Redis restarted (AOF) begins") < said.index("desk alice offers to recorder:rec1")
    assert not any("long before" in s for s in said)
    seconds = [float(line.split()[0]) for line in lines[1:]]
    assert seconds == sorted(seconds) and seconds[0] == 0.0
    assert not any("c_unknown" in line for line in lines)  # nothing known: nothing said
