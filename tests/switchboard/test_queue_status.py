"""Live queue figures: specialists hear every change within the flush window; kiosks only
what they show, at most once a `TERMINAL_WINDOW_S` (on a busy day every flush changes
some figure, and each round goes to every kiosk of the node)."""

from __future__ import annotations

import asyncio
from typing import Any

from signaling import messages as m
from signaling.identity import Identity, Role
from signaling.memory import MemoryRouter
from signaling.model import QueueConfig
from signaling.queue_status import kiosk_view
from tests.switchboard.conftest import ALICE, KIOSK, SITE, Desk, Sink, make_desk

KIOSK2 = Identity(role=Role.TERMINAL, id="T2", name="二号机", site=SITE)


def statuses(sink: Sink) -> list[dict[str, Any]]:
    return [f for f in sink.frames if f["type"] == "queue.status"]


def tax(status: dict[str, Any]) -> dict[str, Any]:
    return next(q for q in status["queues"] if q["id"] == "tax")


def more_statuses(desk: Desk, sink: Sink) -> asyncio.Event:
    """Set after the first flush that leaves `sink` more statuses than it has now."""
    before, arrived = len(statuses(sink)), asyncio.Event()
    desk.s.status.listeners.add(lambda: len(statuses(sink)) > before and arrived.set())
    return arrived


async def settled(desk: Desk) -> None:
    """Every flush the steps so far asked for has run, and one more after them."""
    status = desk.s.status
    while status._flush_handle is not None or (
            status._flushing is not None and not status._flushing.done()):
        flushed = asyncio.Event()
        status.listeners.add(flushed.set)
        try:
            await asyncio.wait_for(flushed.wait(), 10)
        finally:
            status.listeners.discard(flushed.set)
    await status.flush()


async def test_a_kiosk_is_not_sent_a_status_it_would_show_the_same(desk: Desk) -> None:
    alice = await desk.connect(ALICE)  # logged in, away: the call waits
    kiosk = await desk.connect(KIOSK)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    await settled(desk)
    desk_before, kiosk_before = len(statuses(alice)), len(statuses(kiosk))
    assert tax(statuses(kiosk)[-1])["waiting"] == 1
    desk.clock.now += 7  # the longest wait grows; nothing the kiosk shows changes
    await desk.s.status.flush()
    assert len(statuses(alice)) == desk_before + 1
    assert tax(statuses(alice)[-1])["longest_wait_s"] == tax(statuses(kiosk)[-1])[
        "longest_wait_s"] + 7
    assert len(statuses(kiosk)) == kiosk_before


async def test_a_change_the_kiosk_shows_waits_for_the_end_of_its_window(desk: Desk) -> None:
    alice = await desk.connect(ALICE)
    kiosk = await desk.connect(KIOSK)
    await desk.connect(KIOSK2)
    await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    await settled(desk)  # the callers' round just went: the window starts
    kiosk_before = len(statuses(kiosk))
    await desk.drive(KIOSK2, m.CallRequest(queue="tax"))
    arrived = more_statuses(desk, kiosk)
    await desk.s.status.flush()
    assert tax(statuses(alice)[-1])["waiting"] == 2  # specialists: at once
    assert len(statuses(kiosk)) == kiosk_before  # kiosks: at the window's end
    await asyncio.wait_for(arrived.wait(), 10)
    assert [tax(s)["waiting"] for s in statuses(kiosk)[kiosk_before:]] == [2]


async def test_figures_the_kiosk_does_not_show_reach_it_at_the_refresh(database: Any) -> None:
    queues = [QueueConfig(id="tax", name="税务咨询")]
    async for desk in make_desk(database, queues=queues, router=MemoryRouter(queues)):
        desk.s.status._refresh_s = 0.0  # every round may carry them
        await desk.connect(ALICE)
        kiosk = await desk.connect(KIOSK)
        await desk.drive(KIOSK, m.CallRequest(queue="tax"))
        await settled(desk)
        desk.clock.now += 7
        arrived = more_statuses(desk, kiosk)
        await desk.s.status.flush()
        await asyncio.wait_for(arrived.wait(), 10)
        assert tax(statuses(kiosk)[-1])["longest_wait_s"] >= 7


def _item(**changes: Any) -> m.QueueStatusItem:
    base: dict[str, Any] = dict(id="tax", name="税务咨询", open=True, waiting=3,
                                longest_wait_s=12.0, estimated_wait_s=600.0, agents_available=1)
    return m.QueueStatusItem(**{**base, **changes})


def test_the_kiosk_view_is_what_the_home_screen_words() -> None:
    def same(a: m.QueueStatusItem, b: m.QueueStatusItem) -> bool:
        return kiosk_view(m.QueueStatus(queues=[a])) == kiosk_view(m.QueueStatus(queues=[b]))

    assert same(_item(), _item(longest_wait_s=99.9))
    assert same(_item(estimated_wait_s=600.0), _item(estimated_wait_s=629.0))  # "10 minutes"
    assert not same(_item(estimated_wait_s=600.0), _item(estimated_wait_s=631.0))
    assert not same(_item(estimated_wait_s=30.0), _item(estimated_wait_s=31.0))  # seconds
    assert same(_item(agents_available=1), _item(agents_available=4))
    assert not same(_item(agents_available=0), _item(agents_available=1))
    assert not same(_item(), _item(waiting=4))
    assert not same(_item(), _item(open=False))
