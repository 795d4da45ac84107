"""Where a step waited: `vwin_step_wait_seconds` by kind and the slow-step log line."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from server.steptrace import STEP, SlowSteps, Trace, begin, describe, end, waiting
from tests.helpers import connected_call
from tests.test_metrics import samples, scrape


def waits(text: str) -> dict[str, float]:
    """Wait kind -> how many waits of that kind were observed."""
    return {dict(labels)["wait"]: v for (name, labels), v in samples(text).items()
            if name == "vwin_step_wait_seconds_count"}


async def test_a_call_s_steps_wait_on_routing_and_the_log_by_kind(
    aiohttp_client: Any, make_app: Callable[..., web.Application], routing_backend: str
) -> None:
    client = await aiohttp_client(make_app())
    call = await connected_call(client)  # a request and an accept, each logged
    counted = waits(await scrape(client))
    assert counted.get("database log append", 0) >= 2
    if routing_backend == "redis":  # the router's scripts by name, timers as one wait
        assert counted.get("redis enqueue", 0) >= 1
        assert counted.get("redis accept", 0) >= 1
        assert counted.get("redis timer set", 0) >= 1  # the ring timer of the offer
    else:  # the memory router never waits
        assert not [k for k in counted if k.startswith("redis")]
    await call.kiosk.send({"type": "call.hangup", "call_id": call.call_id})
    await call.agent.recv("call.ended")
    after = waits(await scrape(client))
    assert after["database log append"] > counted["database log append"]


async def test_a_slow_step_is_logged_with_its_waits(
    aiohttp_client: Any, make_app: Callable[..., web.Application],
    caplog: pytest.LogCaptureFixture
) -> None:
    client = await aiohttp_client(make_app(server={"slow_step_ms": 0.001}))  # every step
    with caplog.at_level(logging.WARNING, logger="server.steptrace"):
        await connected_call(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "server.steptrace"]
    assert lines, "no slow step logged"
    # at most one line a second: the first step's (hellos are not steps)
    assert re.match(r"slow step: [a-z.]+ took \d+ ms, \d+ ms of it waiting: "
                    r"(no waits|.+ at \+\d+ took \d+ ms)", lines[0]), lines


def test_waits_side_by_side_count_once_and_slow_lines_are_rate_limited(
    caplog: pytest.LogCaptureFixture
) -> None:
    trace = Trace(10.0)
    trace.waits += [("redis enqueue", 0.010, 0.020), ("redis snapshot", 0.015, 0.010),
                    ("database log append", 0.050, 0.005)]
    assert trace.waited() == pytest.approx(0.025)  # 10..30 ms and 50..55 ms
    assert describe(trace).startswith("redis enqueue at +10 took 20 ms, redis snapshot at +15")
    now = [100.0]
    slow = SlowSteps(0.1, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="server.steptrace"):
        slow.check("call.accept", trace, 0.05)  # under the threshold: nothing
        slow.check("call.request", trace, 0.2)
        slow.check("call.request", trace, 0.3)  # within the second: counted, not logged
        slow.check("call.request", trace, 0.3)
        now[0] += 1.5
        slow.check("call.hangup", trace, 0.4)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("slow step: call.request took 200 ms, 25 ms of it waiting")
    assert lines[1].startswith("slow step: call.hangup took 400 ms")
    assert lines[1].endswith("(and 2 more slow steps since the last line)")
    SlowSteps(0.0).check("call.request", trace, 9.0)  # 0: never
    assert len(caplog.records) == 2


async def test_a_call_inside_another_counts_once_and_a_done_step_takes_no_more() -> None:
    trace, begun = begin(time.monotonic())
    with waiting("redis enqueue"), waiting("redis EVALSHA"):  # the script's own command
        await asyncio.sleep(0)
    await asyncio.gather(_wait_in_a_task_of_the_step(), _wait_in_a_task_of_the_step())
    outlived = asyncio.ensure_future(_wait_after())
    held = STEP.get()
    end(begun)  # the step is done; a task it started (its context copied) runs on
    assert held == [] and STEP.get() is None  # nothing of the step kept by the task
    await outlived
    assert [kind for kind, _, _ in trace.waits] == ["redis enqueue", "redis HGET",
                                                    "redis HGET"]
    with waiting("redis SET"):  # no step traced: nothing to add to
        pass


async def _wait_in_a_task_of_the_step() -> None:
    with waiting("redis HGET"):
        await asyncio.sleep(0)


async def _wait_after() -> None:
    """A task of the step that waits once the step is done."""
    while STEP.get():
        await asyncio.sleep(0)
    with waiting("redis GET"):
        await asyncio.sleep(0)
