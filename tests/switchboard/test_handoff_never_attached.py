"""A phone that took a call over and never got as far as its presence (issue 16's CI-size
day, `c_945e1e8af3e1449a`: the hand-off was logged, then sending failed at the Redis
restart, so the hello failed before `connect`; the phone's next hello was refused
`ticket_used`). The call was the visitor's, with no presence and no grace timer: `queued`
for ever. It now has the visitor's grace from the hand-off; a phone that does connect
cancels it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from server.storage.db import Database
from signaling import handoff, timers
from signaling import messages as m
from signaling.commit import commit
from signaling.errors import Refused
from signaling.identity import encode_identity
from signaling.switchboard import Switchboard
from tests.switchboard.conftest import ALICE, KIOSK, Desk, make_desk


@pytest.fixture
async def desk(database: Database) -> AsyncIterator[Desk]:
    async for made in make_desk(database):
        board = Switchboard(dataclasses.replace(made.board.services, handoffs=database))
        yield dataclasses.replace(made, board=board)


async def _ticket(desk: Desk) -> tuple[str, str]:
    """A kiosk's call waiting (its specialist logged in, not available) and its ticket."""
    await desk.connect(ALICE)
    kiosk = await desk.connect(KIOSK)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    call_id = next(str(f["call_id"]) for f in kiosk.frames if f["type"] == "call.queued")
    await desk.drive(KIOSK, m.CallHandoff(call_id=call_id))
    ready = next(f for f in kiosk.frames if f["type"] == "call.handoff_ready")
    return call_id, str(ready["url"]).removeprefix("/m/")


async def test_a_call_taken_by_a_phone_that_never_attached_is_abandoned(desk: Desk) -> None:
    call_id, ticket = await _ticket(desk)
    visitor, out = await handoff.open_ticket(desk.s, ticket, None)
    [grace] = [t for t in out.durable_timers if t.key == timers.grace_key(visitor.principal)]
    await commit(desk.s, out)  # logged and sent; the phone's socket is gone before `connect`
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.visitor == visitor.id

    await desk.fire(grace.kind, grace.payload)

    assert await desk.s.router.get_call(call_id) is None
    detail = await desk.db.get_session(call.session_id)
    assert detail is not None and detail.state == "abandoned"
    assert [e.type for e in detail.events][-2:] == ["handed_off", "abandoned"]


async def test_a_phone_that_attached_keeps_its_call_past_that_grace(desk: Desk) -> None:
    call_id, ticket = await _ticket(desk)
    visitor = await desk.board.open_ticket(ticket, None)
    phone = await desk.connect(visitor)  # its welcome cancels the grace
    assert phone.frames[0]["type"] == "welcome"
    grace = timers.grace(visitor.principal, encode_identity(visitor), 0, 1.0)
    await desk.fire(grace.kind, grace.payload)  # fired all the same (a cancel lost)
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.visitor == visitor.id  # epoch 0 is no presence's


async def test_a_phone_that_never_attached_opens_its_ticket_again(desk: Desk) -> None:
    """Its first hello took the call over and failed before `connect` (no welcome, so no
    resume token): the same ticket lets it in, and once it has attached the ticket is
    that phone's alone again."""
    call_id, ticket = await _ticket(desk)
    first, out = await handoff.open_ticket(desk.s, ticket, None)
    await commit(desk.s, out)  # the phone's socket is gone before `connect`
    visitor = await desk.board.open_ticket(ticket, None)
    assert (visitor.principal, visitor.call_id) == (first.principal, call_id)
    phone = await desk.connect(visitor, ticket=ticket)
    assert phone.frames[0]["type"] == "welcome"
    with pytest.raises(Refused) as refused:
        await desk.board.open_ticket(ticket, None)
    assert refused.value.code == "ticket_used"
    resumed = await desk.board.open_ticket(ticket, str(phone.frames[0]["resume"]))
    assert resumed.principal == visitor.principal
    detail = await desk.db.get_session(
        (await desk.s.router.get_call(call_id) or pytest.fail("call gone")).session_id)
    assert detail is not None and [e.type for e in detail.events].count("handed_off") == 1


async def test_a_phone_whose_welcome_was_never_sent_opens_its_ticket_again(
        desk: Desk) -> None:
    """Its node took the call over and attached the phone, and was killed before the
    welcome (CI's short faulted day, `c_9a81c3dd48e7a7f3`: the phone's next hello, on the
    survivor, was refused `ticket_used`, and the visitor was locked out of the call it had
    taken over). The ticket is the phone's alone only once a welcome went to it."""
    call_id, ticket = await _ticket(desk)
    visitor = await desk.board.open_ticket(ticket, None)
    await desk.connect(visitor)  # attached, then killed before the welcome (no ticket mark)

    again = await desk.board.open_ticket(ticket, None)
    assert (again.principal, again.call_id) == (visitor.principal, call_id)
    phone = await desk.connect(again, ticket=ticket)  # the survivor's welcome
    assert phone.frames[0]["type"] == "welcome"
    with pytest.raises(Refused) as refused:
        await desk.board.open_ticket(ticket, None)
    assert refused.value.code == "ticket_used"
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.visitor == visitor.id
