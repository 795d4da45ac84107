"""Pending matters ("matters not yet done"): their states and the allowed moves.

A matter is opened by a specialist or manager when a session cannot finish
it, owned by one department, and due by its class (`signaling.calendar`).
It moves ``open -> in_progress -> resolved``; a matter the department cannot
solve is ``escalated`` (from open or in progress) and may be taken up again
or resolved from there. A simple matter solved on the spot may go straight
from ``open`` to ``resolved``. Resolving needs a resolution note; a resolved
matter is final.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal, get_args

from signaling.errors import Refused

MatterState = Literal["open", "in_progress", "resolved", "escalated"]
STATES: Final[tuple[str, ...]] = get_args(MatterState)
CLASSES: Final = ("simple", "general", "complex")

TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "open": frozenset({"in_progress", "escalated", "resolved"}),
    "in_progress": frozenset({"resolved", "escalated"}),
    "escalated": frozenset({"in_progress", "resolved"}),
    "resolved": frozenset(),
}


class MatterError(Refused):
    """A refused change of a pending matter; ``code`` is stable for clients."""


def check_transition(old: str, new: str, note: str | None) -> str | None:
    """The cleaned note for a move from ``old`` to ``new``, or MatterError saying why not."""
    if new not in TRANSITIONS:
        raise MatterError("invalid_state", f"unknown state {new!r}; expected one of {STATES}")
    if new not in TRANSITIONS.get(old, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(old, ()))) or "nothing (it is final)"
        raise MatterError("invalid_transition",
                          f"a matter that is {old} cannot become {new}; allowed: {allowed}")
    text = (note or "").strip() or None
    if new == "resolved" and text is None:
        raise MatterError("resolution_required", "resolving a matter needs a resolution note")
    return text
