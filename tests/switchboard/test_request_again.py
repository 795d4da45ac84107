"""A kiosk's `call.request` sent again (its reply lost with the socket, issue 16's `no_reply`):
answered with the call the first one made, never a second call; a terminal has one live call,
held by the router even when two requests both passed the step's read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from server.storage.db import Database
from signaling import messages as m
from signaling.errors import Refused
from signaling.memory import MemoryRouter
from tests.switchboard.conftest import ALICE, KIOSK, QUEUES, Desk, make_desk


async def sessions_of_kiosk(desk: Desk) -> dict[str, str]:
    """call id -> the state the log has."""
    rows, _ = await desk.db.list_sessions(terminal=KIOSK.id, limit=100)
    return {r.call_id: r.state for r in rows}


async def test_a_request_sent_again_is_answered_with_its_call(desk: Desk) -> None:
    await desk.connect(ALICE)
    sink = await desk.connect(KIOSK)
    first = await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    queued = first.sends[0][1]
    assert isinstance(queued, m.CallQueued)
    sink.frames.clear()
    again = await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    assert not again.events  # nothing new to log: no second session
    assert [f["type"] for f in sink.frames] == ["call.queued"]
    assert sink.frames[0]["call_id"] == queued.call_id and sink.frames[0]["resumed"]
    with pytest.raises(Refused) as refused:  # another request of the kiosk: refused as before
        await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-2"))
    assert refused.value.code == "call_in_progress"
    assert await sessions_of_kiosk(desk) == {queued.call_id: "queued"}


async def test_a_request_sent_again_for_an_answered_call_hears_it_connected(desk: Desk) -> None:
    await desk.connect(ALICE)
    await desk.drive(ALICE, m.AgentStatus(status="available"))
    sink = await desk.connect(KIOSK)
    first = await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    call_id = first.sends[0][1].call_id  # type: ignore[attr-defined]
    await desk.drive(ALICE, m.CallAccept(call_id=call_id, offer=1))
    sink.frames.clear()
    alice = desk.sinks[ALICE.principal]
    alice.frames.clear()
    await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
    assert [(f["type"], f["call_id"], f["resumed"]) for f in sink.frames] == [
        ("call.connected", call_id, True)]
    assert alice.frames == []  # the kiosk's resume told her it came back: not again


class RacingRouter(MemoryRouter):
    """A real memory router; the first queue check of the test's request lets `rival` run
    first, so both requests pass the step's read of the kiosk's calls before either is
    queued (two nodes, or a request sent again while the first was being logged)."""

    rival: AsyncIterator[None] | None = None

    async def check_open(self, queue: str) -> str | None:
        rival, self.rival = self.rival, None
        if rival is not None:
            await anext(rival)
        return await super().check_open(queue)


@pytest.fixture
async def racing(database: Database) -> AsyncIterator[Desk]:
    async for made in make_desk(database, router=RacingRouter(QUEUES)):
        yield made


@pytest.mark.parametrize("same_key", [True, False])
async def test_two_requests_racing_make_one_call(racing: Desk, same_key: bool) -> None:
    """The loser's session is closed (`rejected`, `call_in_progress`) and, sent again with the
    same key, it is answered with the winner's call; with another key it is refused."""
    desk = racing
    await desk.connect(ALICE)
    sink = await desk.connect(KIOSK)
    router = desk.s.router
    assert isinstance(router, RacingRouter)

    async def rival() -> AsyncIterator[None]:
        await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id="visit-1"))
        yield

    router.rival = rival()
    key = "visit-1" if same_key else "visit-2"
    if same_key:
        await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id=key))
    else:
        with pytest.raises(Refused) as refused:
            await desk.drive(KIOSK, m.CallRequest(queue="tax", request_id=key))
        assert refused.value.code == "call_in_progress"
    (live,) = await router.calls_of_terminal(KIOSK.id)
    told = {f["call_id"] for f in sink.frames if f["type"] == "call.queued"}
    assert told == {live.id}
    states = await sessions_of_kiosk(desk)
    assert states.pop(live.id) == "queued"
    assert list(states.values()) == ["rejected"]
