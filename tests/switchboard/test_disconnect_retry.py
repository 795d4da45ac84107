"""A disconnect that meets a failing backend (Redis restarting, its pool drained) is
carried out once the backend answers again: the caller's call is still settled after the
grace, never left queued for ever."""

from __future__ import annotations

import logging

import pytest

from signaling import messages as m
from signaling import switchboard
from signaling.model import CallState

from .conftest import ALICE, KIOSK, Desk


async def _queued_call(desk: Desk) -> str:
    await desk.connect(ALICE)  # logged in (away): the queue is staffed
    await desk.connect(KIOSK)
    out = await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    return str(out.sends[0][1].call_id)  # type: ignore[attr-defined]


def _failing_disconnects(desk: Desk, monkeypatch: pytest.MonkeyPatch, failures: int) -> None:
    """The presences' backend refuses the next `failures` disconnects, as redis-py does
    when its pool has no connection to give."""
    presences = desk.s.presences
    real = presences.disconnect
    left = [failures]

    async def disconnect(principal: str, epoch: int) -> bool:
        if left[0] > 0:
            left[0] -= 1
            raise ConnectionError("No connection available.")
        return await real(principal, epoch)

    monkeypatch.setattr(presences, "disconnect", disconnect)


def _grace(desk: Desk) -> dict[str, object]:
    return {"identity": {"role": "terminal", "id": "T1", "name": "一号机",
                         "site": {"id": "park1", "name": "高新园区", "kind": "park"}},
            "epoch": desk.epochs["terminal:T1"]}


async def test_a_failed_disconnect_is_retried_and_the_call_abandoned_after_the_grace(
        desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(switchboard, "DISCONNECT_RETRY_S", (0.01, 0.01, 0.01, 0.01))
    call_id = await _queued_call(desk)
    _failing_disconnects(desk, monkeypatch, failures=3)
    with caplog.at_level(logging.WARNING, logger="signaling.switchboard"):
        await desk.board.disconnect(KIOSK, desk.epochs["terminal:T1"], desk.sinks["terminal:T1"])
    assert caplog.text.count("disconnecting terminal:T1 failed") == 3
    presence = await desk.s.presences.get("terminal:T1")
    assert presence is not None and not presence.connected
    out = await desk.fire("grace", _grace(desk))
    assert [e.type for e in out.events] == ["abandoned"]
    assert out.events[0].data["reason"] == "terminal_lost"
    call = await desk.s.router.get_call(call_id)
    assert call is None or call.state != CallState.QUEUED


async def test_a_disconnect_given_up_is_logged_as_an_error(
        desk: Desk, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(switchboard, "DISCONNECT_RETRY_S", (0.01,))
    await _queued_call(desk)
    _failing_disconnects(desk, monkeypatch, failures=5)
    with caplog.at_level(logging.WARNING, logger="signaling.switchboard"):
        await desk.board.disconnect(KIOSK, desk.epochs["terminal:T1"], desk.sinks["terminal:T1"])
    given_up = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in given_up] == [
        "disconnecting terminal:T1 failed; given up after 2 attempts"]


async def test_a_disconnect_carried_out_late_leaves_a_presence_made_anew_alone(
        desk: Desk) -> None:
    """The old connection's disconnect comes after its presence was dropped (grace over)
    and the kiosk connected again (a retry that waited for a backend; a stalled node's):
    it names an epoch the new presence must never have, so the kiosk's new call is not
    abandoned at the grace that disconnect would set."""
    await desk.connect(ALICE)
    await desk.connect(KIOSK)
    old_epoch, old_sink = desk.epochs["terminal:T1"], desk.sinks["terminal:T1"]
    await desk.board.disconnect(KIOSK, old_epoch, old_sink)
    await desk.fire("grace", _grace(desk))
    assert await desk.s.presences.get("terminal:T1") is None

    await desk.connect(KIOSK)  # a new presence
    await desk.board.disconnect(KIOSK, old_epoch, old_sink)  # the old one's, late
    out = await desk.drive(KIOSK, m.CallRequest(queue="tax"))
    call_id = str(out.sends[0][1].call_id)  # type: ignore[attr-defined]
    out = await desk.fire("grace", {**_grace(desk), "epoch": old_epoch})
    assert out.events == []
    call = await desk.s.router.get_call(call_id)
    assert call is not None and call.state == CallState.QUEUED
