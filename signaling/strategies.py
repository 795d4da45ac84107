"""Agent-selection strategies: which available specialist gets the next call.

The routing core has already ordered by "tried this call before" and skill level,
so a strategy only breaks ties (and the specialist's id breaks the strategy's).
Each strategy is one record with both of its encodings: `key` for the in-memory
router (`acd.py`), `lua` for the Redis one (`server/cluster/scripts.py`), so every
strategy the configuration accepts runs on both backends; the shared router tests
hold the two encodings to the same order. Add one by adding a record to `STRATEGIES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .model import Agent


@dataclass(frozen=True, slots=True)
class Strategy:
    """One way to order specialists of the same level; smaller sorts first.

    `lua` is a Lua expression of `a`, the specialist's hash key in Redis, that gives a
    string whose byte order is the order of `key`'s tuples (fixed-width encodings,
    joined by "|"): Redis keeps available specialists sorted by it.
    """

    name: str
    key: Callable[[Agent], tuple[float, ...]]
    lua: str
    summary: str


def _longest_idle(agent: Agent) -> tuple[float, ...]:
    return (agent.idle_since,)


def _fewest_calls(agent: Agent) -> tuple[float, ...]:
    return (float(agent.calls_answered), agent.idle_since)


def _round_robin(agent: Agent) -> tuple[float, ...]:
    return (agent.last_offered,)


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("longest-idle", _longest_idle, 'hget(a, "ikey")',
             "the specialist idle the longest answers first (fair, the ACD default)"),
    Strategy("fewest-calls", _fewest_calls,
             'string.format("%010d", tonumber(hget(a, "answered"))) .. "|" .. hget(a, "ikey")',
             "the fewest calls answered since logging in, then longest idle"),
    Strategy("round-robin", _round_robin, 'hget(a, "okey")',
             "the specialist offered a call the longest ago (or, never offered one, "
             "logged in the earliest) goes first, whether they answered it or not"),
)}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
