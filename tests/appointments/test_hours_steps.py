"""`call.request` against the hours on the switchboard, with its clock set to moments of the
2026 calendar: a public holiday, a make-up Saturday, the lunch break, the closing minute."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling.calendar import WorkingCalendar
from signaling.hours import OpeningHours
from signaling.model import QueueConfig
from tests.joint.conftest import local
from tests.switchboard.conftest import ALICE, KIOSK, Desk, make_desk

QUEUES = [QueueConfig(id="tax", name="税务咨询", hours="09:00-12:00,13:30-17:30")]


@pytest.fixture(params=["sqlite"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def desk(database: Database) -> AsyncIterator[Desk]:
    hours = OpeningHours(WorkingCalendar.from_dir("configs/calendar"), {"tax": QUEUES[0].hours})
    async for made in make_desk(database, queues=QUEUES, hours=hours):
        yield made


@pytest.mark.parametrize(("moment", "opens_at"), [
    (local(2026, 10, 2, 10, 0), local(2026, 10, 8, 9, 0)),  # National Day: closed all week
    (local(2026, 2, 14, 12, 15), local(2026, 2, 14, 13, 30)),  # make-up Saturday, lunch
    (local(2026, 3, 10, 17, 30), local(2026, 3, 11, 9, 0)),  # the closing minute
    (local(2026, 3, 7, 10, 0), local(2026, 3, 9, 9, 0)),  # an ordinary Saturday
])
async def test_closed_moments_reject_with_the_next_opening(
        desk: Desk, moment: dt.datetime, opens_at: dt.datetime) -> None:
    await desk.connect(ALICE)
    kiosk = await desk.connect(KIOSK)
    desk.clock.now = moment.timestamp()
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    rejected = [f for f in kiosk.frames if f["type"] == "call.rejected"]
    assert rejected == [{"type": "call.rejected", "queue": "tax", "reason": "closed",
                         "opens_at": opens_at.isoformat()}]


@pytest.mark.parametrize("moment", [
    local(2026, 2, 14, 10, 0),  # make-up Saturday
    local(2026, 3, 10, 13, 30),  # after lunch
    local(2026, 3, 10, 17, 29),  # the last minute
])
async def test_open_moments_queue(desk: Desk, moment: dt.datetime) -> None:
    await desk.connect(ALICE)
    kiosk = await desk.connect(KIOSK)
    desk.clock.now = moment.timestamp()
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    assert "call.queued" in kiosk.types() and "call.rejected" not in kiosk.types()
