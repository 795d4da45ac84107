"""A switchboard built from the memory backends and a real SQLite session log, with an
injected clock: no aiohttp, no sockets. Steps are driven with typed messages and their
outbox read back."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling.backend import Router
from signaling.commit import commit
from signaling.hours import OpeningHours
from signaling.identity import Identity, Role
from signaling.link import SingleNode
from signaling.memory import LocalBus, LocalScheduler, MemoryPresences, MemoryRouter
from signaling.model import QueueConfig
from signaling.outbox import Outbox
from signaling.queue_status import QueueStatus
from signaling.recorders import MemoryRecorderPool, RecordingSetup
from signaling.services import Services
from signaling.switchboard import ANY, STEPS, Switchboard, timer_step

QUEUES = [
    QueueConfig(id="tax", name="税务咨询", ring_timeout_s=20.0, wrapup_s=30.0),
    QueueConfig(id="general", name="综合咨询", ring_timeout_s=15.0, wrapup_s=10.0),
]
SITE = m.SiteInfo(id="park1", name="高新园区", kind="park")
KIOSK = Identity(role=Role.TERMINAL, id="T1", name="一号机", site=SITE)
ALICE = Identity(role=Role.SPECIALIST, id="alice", name="李丽", skills={"tax": 1},
                 department="tax")
BOB = Identity(role=Role.SPECIALIST, id="bob", name="王波", skills={"general": 1},
               department="market")
RECORDER = Identity(role=Role.RECORDER, id="rec1", name="rec1")


class Clock:
    """The switchboard's time, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Sink:
    """One connection's outbound side, as the client would read it."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    closed: int | None = None

    def send(self, payload: bytes) -> None:
        self.frames.append(msgspec.json.decode(payload))

    def close(self, code: int, reason: str) -> None:
        del reason
        self.closed = code

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]


@dataclass
class Desk:
    """The board and what the test drives it with."""

    board: Switchboard
    clock: Clock
    db: Database
    sinks: dict[str, Sink] = field(default_factory=dict)
    epochs: dict[str, int] = field(default_factory=dict)
    resumes: dict[str, str] = field(default_factory=dict)

    @property
    def s(self) -> Services:
        return self.board.services

    async def connect(self, who: Identity, resume: str | None = None,
                      ticket: str | None = None) -> Sink:
        """As the edge does after hello (a phone's `ticket` with it)."""
        sink = Sink()
        self.sinks[who.principal] = sink
        self.epochs[who.principal] = await self.board.connect(who, sink, resume, None, ticket)
        self.resumes[who.principal] = sink.frames[0]["resume"]
        return sink

    async def drive(self, who: Identity, msg: m.Inbound) -> Outbox:
        """The step's outbox for one message, then committed as the switchboard does."""
        step = STEPS.get((who.role, type(msg))) or STEPS[(ANY, type(msg))]
        out = await step(self.s, who, msg)
        await commit(self.s, out)
        return out

    def board_of(self, services: Services) -> Desk:
        """The same desk (connections, clock, database) with other services, e.g. a
        session log that fails."""
        return dataclasses.replace(self, board=Switchboard(services))

    async def fire(self, kind: str, payload: dict[str, Any]) -> Outbox:
        """A timer fires: its step's outbox, committed."""
        out = await timer_step(self.s, kind, payload)
        await commit(self.s, out)
        return out


@pytest.fixture(params=["sqlite"])
def storage_backend(request: pytest.FixtureRequest) -> str:
    """The unit suite needs one session log: SQLite (both run in tests/storage)."""
    return str(request.param)


async def make_desk(database: Database, *, queues: Sequence[QueueConfig] = QUEUES,
                    router: Router | None = None, recording: RecordingSetup | None = None,
                    hours: OpeningHours | None = None, bus: LocalBus | None = None
                    ) -> AsyncIterator[Desk]:
    """A desk on one node's memory backends, or on `router` (a Redis one) and `bus` in
    their place."""
    clock = Clock()
    by_id = {q.id: q for q in queues}
    bus = bus or LocalBus()
    router = router or MemoryRouter(queues)
    scheduler = LocalScheduler()  # no handler: the tests fire timers by hand (`Desk.fire`)
    link = SingleNode(router, bus)
    status = QueueStatus(by_id, router, bus, clock, link, hours)
    services = Services(queues=by_id, router=router, bus=bus, scheduler=scheduler,
                        presences=MemoryPresences(), session_log=database, clock=clock,
                        link=link, status=status,
                        recording=recording)
    yield Desk(Switchboard(services), clock, database)
    await status.close()
    await scheduler.close()


@pytest.fixture
async def desk(database: Database) -> AsyncIterator[Desk]:
    """Recording off."""
    async for made in make_desk(database):
        yield made


@pytest.fixture
async def recorded_desk(database: Database) -> AsyncIterator[Desk]:
    """Recording on, with the in-memory recorder pool."""
    router = MemoryRouter(QUEUES)
    async for made in make_desk(database, router=router,
                                recording=RecordingSetup(pool=MemoryRecorderPool(router))):
        yield made


async def offered_recorded(desk: Desk) -> tuple[Sink, Sink, dict[str, Any]]:
    """`RECORDER` live (room for 4), `ALICE` available, `KIOSK`'s call offered to her:
    the recorder's and Alice's sinks, and the offer."""
    recorder = await desk.connect(RECORDER)
    await desk.board.recorder_joined(RECORDER, 4)
    alice = await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    await desk.connect(KIOSK)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    return recorder, alice, alice.frames[-1]
