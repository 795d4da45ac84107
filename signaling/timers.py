"""The switchboard's named timers: one key builder per kind, and what each carries.

A key names one timer; scheduling a key again replaces it (`Scheduler`). The
payload is plain data, since a Redis timer may fire on another node.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

RING: Final = "ring"  # an offer rang out: `offers.ring_timeout`
GRACE: Final = "grace"  # a lost connection's resume grace is over: `connections.release`
WRAPUP: Final = "wrapup"  # a specialist's wrap-up time is over: `endings.finish_wrapup`
OVERFLOW: Final = "overflow"  # a call waited long enough to be offered to its overflow queue
RECORDING_WAIT: Final = "recording_wait"  # `[recording] wait_s` passed without a recorder
UNBLOCK: Final = "unblock"  # a decline's block (`decline_block_s`) is over: dispatch again
LOST_END: Final = "lost_end"  # a call gone from routing, its log still open: `resume.lost_end`


class Timer(msgspec.Struct, frozen=True, kw_only=True):
    """One timer to set: its key, delay, kind and payload."""

    key: str
    delay_s: float
    kind: str
    payload: dict[str, Any]


def ring_key(call_id: str, offer: int) -> str:
    """Each offer has its own key, so setting one never moves another offer's (and a late
    one finds its offer over: `Router.timeout` refuses it)."""
    return f"ring:{call_id}:{offer}"


def grace_key(principal: str) -> str:
    return f"grace:{principal}"


def wrapup_key(agent_id: str) -> str:
    return f"wrapup:{agent_id}"


def overflow_key(call_id: str) -> str:
    return f"overflow:{call_id}"


def unblock_key(call_id: str, agent_id: str) -> str:
    return f"unblock:{call_id}:{agent_id}"


def ring(call_id: str, agent_id: str, offer: int, delay_s: float) -> Timer:
    return Timer(key=ring_key(call_id, offer), delay_s=delay_s, kind=RING,
                 payload={"call_id": call_id, "agent_id": agent_id, "offer": offer})


def grace(principal: str, identity: dict[str, object], epoch: int, delay_s: float) -> Timer:
    return Timer(key=grace_key(principal), delay_s=delay_s, kind=GRACE,
                 payload={"identity": identity, "epoch": epoch})


def wrapup(agent_id: str, delay_s: float) -> Timer:
    return Timer(key=wrapup_key(agent_id), delay_s=delay_s, kind=WRAPUP,
                 payload={"agent_id": agent_id})


def overflow(call_id: str, delay_s: float) -> Timer:
    return Timer(key=overflow_key(call_id), delay_s=delay_s, kind=OVERFLOW,
                 payload={"call_id": call_id})


def unblock(call_id: str, agent_id: str, delay_s: float) -> Timer:
    """The decliner may be offered the call again once its block ends: dispatch then."""
    return Timer(key=unblock_key(call_id, agent_id), delay_s=delay_s, kind=UNBLOCK,
                 payload={"call_id": call_id})


def recording_wait(call_id: str, delay_s: float) -> Timer:
    return Timer(key=f"{RECORDING_WAIT}:{call_id}", delay_s=delay_s, kind=RECORDING_WAIT,
                 payload={"call_id": call_id})


def lost_end(call_id: str, delay_s: float) -> Timer:
    return Timer(key=f"{LOST_END}:{call_id}", delay_s=delay_s, kind=LOST_END,
                 payload={"call_id": call_id})
