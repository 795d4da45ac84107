"""A resume that crosses a hang-up: the party that comes back is never told its call is
connected after it heard it end (a console showed the ended call until the next one).

The hang-up is run between the resume's read of the call and its send: a real router
whose read of a specialist (the re-sync reads their name for `call.connected`'s list of
participants) lets the hang-up run first, as another connection's step would."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling.identity import Identity
from signaling.memory import MemoryRouter
from signaling.model import Agent
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, Sink, make_desk


class Crossing:
    """Mixed into a real router: the `reads`-th read of a specialist after `cross` is set
    runs `cross` first, to its end, in a task of its own with a context of its own (as
    another connection's step: the numbers its transactions take are not the resume's)."""

    cross: Callable[[], Coroutine[Any, Any, object]] | None = None
    reads = 0

    async def get_agent(self, agent_id: str) -> Agent | None:
        if self.cross is not None:
            self.reads -= 1
            if self.reads == 0:
                cross, self.cross = self.cross, None
                await asyncio.create_task(cross(), context=contextvars.Context())
        found: Agent | None = await super().get_agent(agent_id)  # type: ignore[misc]
        return found


class CrossingMemoryRouter(Crossing, MemoryRouter):
    pass


@pytest.fixture
async def crossing(database: Database) -> AsyncIterator[Desk]:
    async for made in make_desk(database, router=CrossingMemoryRouter(QUEUES)):
        yield made


async def connected_call(desk: Desk) -> str:
    """Alice and the kiosk in a call: its id."""
    await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    await desk.connect(KIOSK)
    first = await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    call_id: str = first.sends[0][1].call_id  # type: ignore[attr-defined]
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    return call_id


def heard(sink: Sink, call_id: str) -> list[tuple[str, Any]]:
    """What the connection heard of the call, in order."""
    return [(f["type"], f.get("resumed")) for f in sink.frames
            if f.get("call_id") == call_id and f["type"] in ("call.connected", "call.ended")]


async def resume_across_hangup(desk: Desk, back: Identity, other: Identity, reads: int
                               ) -> tuple[str, Sink]:
    """`back` loses its socket and resumes; `other` hangs up after the resume read the
    call connected (at the `reads`-th read of a specialist) and before it sent that."""
    call_id = await connected_call(desk)
    await desk.board.disconnect(back, desk.epochs[back.principal], desk.sinks[back.principal])
    cross(desk, other, call_id, reads)
    sink = await desk.connect(back, desk.resumes[back.principal])
    assert isinstance(desk.s.router, Crossing) and desk.s.router.cross is None  # it ran
    return call_id, sink


async def request_again_across_hangup(desk: Desk) -> tuple[str, Sink]:
    """The kiosk sends its `call.request` again (its reply lost with a socket, as far as it
    knows); Alice hangs up after the step read the call connected, before it answered."""
    call_id = await connected_call(desk)
    sink = desk.sinks[KIOSK.principal]
    sink.frames.clear()
    cross(desk, ALICE, call_id, 1)
    await desk.board.handle(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    assert isinstance(desk.s.router, Crossing) and desk.s.router.cross is None  # it ran
    return call_id, sink


def cross(desk: Desk, who: Identity, call_id: str, reads: int) -> None:
    """`who` hangs up at the `reads`-th read of a specialist from now on."""
    router = desk.s.router
    assert isinstance(router, Crossing)

    async def hang_up() -> None:
        await desk.drive(who, m.CallHangup(call_id=call_id))

    router.cross, router.reads = hang_up, reads


def never_connected_after_ended(seen: list[tuple[str, Any]]) -> None:
    assert seen in ([("call.ended", None)], [("call.connected", True), ("call.ended", None)]), seen


# The kiosk's re-sync reads a specialist once (Alice's name); Alice's twice (her status
# first, then her name).
@pytest.mark.parametrize(("back", "other", "reads"), [(KIOSK, ALICE, 1), (ALICE, KIOSK, 2)])
async def test_a_resume_crossing_a_hangup_never_announces_the_ended_call(
        crossing: Desk, back: Identity, other: Identity, reads: int) -> None:
    call_id, sink = await resume_across_hangup(crossing, back, other, reads)
    never_connected_after_ended(heard(sink, call_id))
    if back == ALICE:  # nor in the call again: in wrap-up
        statuses = [f["status"] for f in sink.frames if f["type"] == "agent.status"]
        assert statuses[-1] == "wrap_up", statuses


async def test_a_request_sent_again_crossing_a_hangup_never_announces_the_ended_call(
        crossing: Desk) -> None:
    call_id, sink = await request_again_across_hangup(crossing)
    never_connected_after_ended(heard(sink, call_id))
