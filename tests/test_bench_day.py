"""The short working day of CI: two nodes, Redis and PostgreSQL, recorders, and the faults
(a node killed and restarted, a recorder killed and replaced, Redis restarted, the
database's connections cut); nothing may be lost, doubled, unrecorded or disagree with
the log or the manager report."""

from __future__ import annotations

import asyncio

import pytest

from bench.day import parse, run_day

# The short day; the load not niced (bench.day.LOAD_NICE): in CI the other test
# worker loads the machine, and a niced load's media peers would starve.
SHORT_DAY = ["--terminals", "300", "--specialists", "24", "--hours", "2", "--speed", "120",
             "--nodes", "2", "--faults", "--load-nice", "0"]

FAULTS = ("node killed (SIGKILL) mid-peak and restarted", "recorder killed (SIGKILL) and replaced",
          "Redis restarted (AOF)", "PostgreSQL connection storm")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_short_faulted_day_on_two_nodes_loses_nothing() -> None:
    outcome = asyncio.run(run_day(parse(SHORT_DAY)))
    print(outcome.text)
    figures = outcome.figures
    assert not outcome.failed, outcome.text
    assert figures["answered"] > 50, outcome.text  # the day really ran
    assert figures["sampled"] > 0, outcome.text  # and some calls carried media to a recorder
    assert figures["kept"] and figures["hand-offs"] and figures["forms signed"], outcome.text
    title = outcome.text.split(" (waits in simulated minutes")[0]
    for fault in FAULTS:  # every fault was made
        assert fault in title, outcome.text
