"""`[recording] wait_s`: a call that connects while no recorder has room waits for one.

Just after a start the local recorder is not there yet; the first calls used to go on
unrecorded at once. Now a recorder that joins within `wait_s` records the call from then
on and nothing is logged as failed; past `wait_s` the call goes on unrecorded, logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.helpers import bearer, connected_call, eventually, quick_manager
from tests.recording.test_recording_protocol import events_of, recorder


async def test_a_recorder_that_comes_within_wait_s_records_the_call(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording={
        "enabled": True, "local_recorder": False, "wait_s": 30}))
    call = await connected_call(client)
    rec = await recorder(client, "late")
    start = await rec.recv("record.start")
    assert start["call_id"] == call.call_id and start["segment"] == 1
    joined = await call.kiosk.recv("participant.joined")
    assert joined["participant"]["id"] == rec.me
    types = [e["type"] for e in await events_of(client, call.session_id)]
    assert "recording_started" in types and "recording_failed" not in types


async def test_past_wait_s_the_call_goes_on_unrecorded_and_says_so(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording={
        "enabled": True, "local_recorder": False, "wait_s": 0.5}))
    call = await connected_call(client)
    manager = bearer(await quick_manager(client.server.app))

    async def failed() -> bool:
        return await _failures(client, call.session_id, manager) == ["no_recorder"]

    await eventually(failed)
    await call.kiosk.send({"type": "chat.send", "call_id": call.call_id, "text": "仍在通话"})
    assert (await call.agent.recv("chat.message"))["text"] == "仍在通话"  # the call goes on
    rec = await recorder(client, "later")  # a recorder that comes later still picks it up
    assert (await rec.recv("record.start"))["call_id"] == call.call_id


async def _failures(client: Any, session_id: str, manager: dict[str, str] | None = None
                    ) -> list[str]:
    manager = manager or bearer(await quick_manager(client.server.app))
    resp = await client.get(f"/api/sessions/{session_id}", headers=manager)
    body = await resp.json()
    return [e["data"].get("reason") for e in body["events"] if e["type"] == "recording_failed"]


async def test_a_call_that_ends_within_wait_s_without_a_recorder_says_so(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    """The goal-size day's Redis restart: both recorders out for 40 s, a dozen short calls
    answered and hung up within `wait_s`, and their logs said nothing about recording."""
    client = await aiohttp_client(make_app(recording={
        "enabled": True, "local_recorder": False, "wait_s": 30}))
    call = await connected_call(client)
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.kiosk.recv("call.ended")
    assert await _failures(client, call.session_id) == ["no_recorder"]  # as it ended


async def test_a_call_past_wait_s_names_its_gap_once(
        aiohttp_client: Any, make_app: Callable[..., web.Application]) -> None:
    client = await aiohttp_client(make_app(recording={
        "enabled": True, "local_recorder": False, "wait_s": 0.3}))
    call = await connected_call(client)
    manager = bearer(await quick_manager(client.server.app))

    async def failed() -> bool:
        return bool(await _failures(client, call.session_id, manager))

    await eventually(failed)
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.kiosk.recv("call.ended")
    assert await _failures(client, call.session_id, manager) == ["no_recorder"]
