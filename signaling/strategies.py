"""Agent-selection strategies: which available specialist gets the next call.

A strategy maps an agent to a sort key; smaller sorts first. The routing core
has already ordered by skill level, so a strategy only breaks ties.
Add one by registering a function in `STRATEGIES`.
"""

from __future__ import annotations

from collections.abc import Callable

from .model import Agent

Strategy = Callable[[Agent], tuple[float, ...]]


def longest_idle(agent: Agent) -> tuple[float, ...]:
    """The specialist idle the longest answers first (fair, the ACD default)."""
    return (agent.idle_since,)


def fewest_calls(agent: Agent) -> tuple[float, ...]:
    """The specialist who answered the fewest calls since logging in, then longest idle."""
    return (float(agent.calls_answered), agent.idle_since)


STRATEGIES: dict[str, Strategy] = {
    "longest-idle": longest_idle,
    "fewest-calls": fewest_calls,
}


def get_strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; known: {sorted(STRATEGIES)}") from None
