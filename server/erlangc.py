"""Erlang C: how many specialists a queue needs for its wait target.

The M/M/N queue of a contact centre: calls arrive at random (Poisson, `rate`
per hour), each holds one specialist for an exponentially distributed handle
time (mean `handle_s`: talk plus wrap-up), nobody abandons. With the offered
traffic A = rate x handle time (in Erlangs) and N specialists (N > A):

- the probability that a caller waits at all is Erlang C,
  C(N, A) = N B / (N - A (1 - B)), B being Erlang B computed by its recursion
  B(0) = 1, B(n) = A B(n-1) / (n + A B(n-1)) (no factorials: no overflow);
- the average wait of all callers (ASA) is C(N, A) x handle / (N - A);
- the share answered within t seconds is 1 - C(N, A) exp(-(N - A) t / handle).

The target this project answers for is the domain's "average wait at most 15
minutes" (docs/benchmarks.md, "Staffing estimate"): `needed` is the smallest
N whose ASA is within the target. Pure functions, no I/O.
"""

from __future__ import annotations

import math
from typing import Final

MAX_AGENTS: Final = 10_000  # beyond any queue of a district: the search stops there


def traffic(rate_per_h: float, handle_s: float) -> float:
    """Offered traffic in Erlangs: calls per hour times hours each holds a specialist."""
    if rate_per_h < 0 or handle_s < 0:
        raise ValueError("rate and handle time must be >= 0")
    return rate_per_h * handle_s / 3600.0


def erlang_b(agents: int, erlangs: float) -> float:
    """Blocking probability with `agents` servers and no waiting room."""
    if agents < 0 or erlangs < 0:
        raise ValueError("agents and traffic must be >= 0")
    b = 1.0
    for n in range(1, agents + 1):
        b = erlangs * b / (n + erlangs * b)
    return b


def erlang_c(agents: int, erlangs: float) -> float:
    """Probability that a caller waits (1.0 when the queue cannot keep up: N <= A)."""
    if agents <= erlangs:
        return 1.0
    b = erlang_b(agents, erlangs)
    return agents * b / (agents - erlangs * (1 - b))


def average_wait(agents: int, erlangs: float, handle_s: float) -> float:
    """Average wait of all callers in seconds (infinite when N <= A)."""
    if erlangs == 0:
        return 0.0
    if agents <= erlangs:
        return math.inf
    return erlang_c(agents, erlangs) * handle_s / (agents - erlangs)


def service_level(agents: int, erlangs: float, handle_s: float, within_s: float) -> float:
    """Share of callers answered within `within_s` seconds (0.0 when N <= A)."""
    if erlangs == 0:
        return 1.0
    if agents <= erlangs:
        return 0.0
    return 1 - erlang_c(agents, erlangs) * math.exp(-(agents - erlangs) * within_s / handle_s)


def needed(rate_per_h: float, handle_s: float, target_wait_s: float) -> int:
    """Fewest specialists whose average wait is within `target_wait_s` (0 without calls)."""
    if target_wait_s < 0:
        raise ValueError("the target wait must be >= 0")
    erlangs = traffic(rate_per_h, handle_s)
    if erlangs == 0:
        return 0
    agents = max(1, math.floor(erlangs) + 1)
    while average_wait(agents, erlangs, handle_s) > target_wait_s:
        agents += 1
        if agents > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} specialists needed")
    return agents
