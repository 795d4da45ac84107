"""A broadcast to a node's thousands of sockets lets the node's other work run meanwhile."""

from __future__ import annotations

import asyncio

from signaling.memory import BROADCAST_SLICE, LocalBus


class Recorded:
    def __init__(self) -> None:
        self.got: list[bytes] = []

    def send(self, payload: bytes) -> None:
        self.got.append(payload)

    def close(self, code: int, reason: str) -> None:
        del code, reason


async def test_a_broadcast_to_many_lets_other_work_run_and_reaches_everyone_once() -> None:
    bus = LocalBus()
    kiosks = [Recorded() for _ in range(5 * BROADCAST_SLICE + 3)]
    recorder = Recorded()
    for i, sink in enumerate(kiosks):
        bus.attach(f"terminal:K{i}", "terminal", sink)
    bus.attach("recorder:r1", "recorder", recorder)
    reached_when_other_ran: list[int] = []

    async def other_work() -> None:  # e.g. a call.request arriving meanwhile
        reached_when_other_ran.append(sum(bool(k.got) for k in kiosks))

    broadcast = asyncio.create_task(bus.broadcast(frozenset({"terminal"}), b"status"))
    other = asyncio.create_task(other_work())
    await asyncio.wait_for(asyncio.gather(broadcast, other), 10)
    assert 0 < reached_when_other_ran[0] < len(kiosks)  # it ran in the middle of the fan-out
    assert all(k.got == [b"status"] for k in kiosks)
    assert recorder.got == []  # not a role it was sent to
