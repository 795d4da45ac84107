"""`bench.steps` at its smallest: two real nodes (Redis, PostgreSQL), one kiosk's calls."""

from __future__ import annotations

import pytest

from bench.common import ROOT
from bench.steps import STEPS, one_run


@pytest.mark.slow  # two nodes of its own
async def test_each_step_is_timed_and_the_nodes_waits_counted() -> None:
    got = await one_run(ROOT, pairs=1, calls=3, hogs=0)
    took, waits = got["took"], got["waits"]
    assert isinstance(took, dict) and isinstance(waits, dict)
    for step in STEPS:
        assert len(took[step]) == 3
        assert all(0 < t < 30 for t in took[step])
    assert waits["database log append"] >= 3 * 4  # queued, offered, answered, ended a call
    assert waits["redis enqueue"] == 3 and waits["redis hangup"] == 3
    assert waits["waited"] > 0 and waits["handled"] > 0
