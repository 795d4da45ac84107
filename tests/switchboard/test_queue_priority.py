"""`[[queues]] priority`: an office that wants registration's callers served before
deregistration's, whatever their wait (dispatch is otherwise longest-waiting first across
queues), gives deregistration a higher number."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling.identity import Identity, Role
from signaling.model import QueueConfig
from tests.switchboard.conftest import KIOSK, SITE, Desk, make_desk

KIOSK2 = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=SITE)
DESK = Identity(role=Role.SPECIALIST, id="zhou", name="周敏",
                skills={"registration": 1, "deregistration": 1}, department="market")


@pytest.fixture(params=[0, 5])
async def desk(request: pytest.FixtureRequest, database: Database) -> AsyncIterator[Desk]:
    queues = [QueueConfig(id="registration", name="企业登记"),
              QueueConfig(id="deregistration", name="注销登记", priority=request.param)]
    async for made in make_desk(database, queues=queues):
        yield made


async def test_a_queue_with_a_lower_priority_is_served_first(desk: Desk) -> None:
    sink = await desk.connect(DESK)  # logged in, away: both queues staffed
    for kiosk, queue in ((KIOSK, "deregistration"), (KIOSK2, "registration")):
        await desk.connect(kiosk)
        await desk.drive(kiosk, m.CallRequest(queue=queue))
        desk.clock.now += 60  # deregistration's caller has waited a minute longer
    await desk.drive(DESK, m.AgentStatus(status="available"))
    offered = [f for f in sink.frames if f["type"] == "call.offered"]
    priority = desk.s.queues["deregistration"].priority
    assert offered[0]["queue"] == ("registration" if priority else "deregistration")
