"""Who is on the other end of a connection, once `hello` is authenticated."""

from __future__ import annotations

import enum
import functools
from typing import Final

import msgspec

from .messages import SiteInfo, TerminalInfo
from .model import Call


class Role(enum.StrEnum):
    """The kinds of participant; the prefix of a participant id."""

    TERMINAL = "terminal"
    SPECIALIST = "specialist"
    RECORDER = "recorder"
    VISITOR = "visitor"  # a phone that took a terminal's call over (`call.handoff`)


def principal_of(role: str, raw_id: str) -> str:
    """The participant id used on the wire and in routing: `terminal:T1`, `specialist:alice`.
    (Concatenated: formatting a `Role` goes through `Enum.__format__`, on every relay.)"""
    return role + ":" + raw_id


_SPECIALIST: Final = Role.SPECIALIST.value  # plain strings: a StrEnum member compares slower
_TERMINAL: Final = Role.TERMINAL.value
_VISITOR: Final = Role.VISITOR.value


class Identity(msgspec.Struct, kw_only=True, frozen=True, dict=True):
    """`dict=True` only for `principal`, kept once computed (it is read for every frame)."""

    role: Role
    id: str
    name: str
    site: SiteInfo | None = None
    skills: dict[str, int] = msgspec.field(default_factory=dict)
    department: str | None = None
    call_id: str | None = None  # a visitor's one call: the only one it may act on

    @functools.cached_property
    def principal(self) -> str:
        return principal_of(self.role, self.id)

    def terminal_info(self) -> TerminalInfo:
        site = self.site or SiteInfo(id="", name="", kind="other")
        return TerminalInfo(id=self.id, name=self.name, site=site)


def encode_identity(who: Identity) -> dict[str, object]:
    """The identity as plain data, for a call's context or a timer's payload."""
    return msgspec.to_builtins(who)  # type: ignore[no-any-return]


def decode_identity(data: dict[str, object]) -> Identity:
    return msgspec.convert(data, Identity)


def caller_principal(call: Call) -> str:
    """The caller's participant id: the terminal's, or the phone's that took the call over."""
    if call.visitor is not None:
        return principal_of(Role.VISITOR, call.visitor)
    return principal_of(Role.TERMINAL, call.terminal_id)


def members_of(call: Call) -> set[str]:
    """The participant ids of the people in the call: its caller and specialists."""
    return {caller_principal(call)} | {principal_of(Role.SPECIALIST, a) for a in call.agents}


def is_member(call: Call, principal: str) -> bool:
    """`principal in members_of(call)`, without building the set (checked for every
    relayed frame)."""
    role, _, raw = principal.partition(":")
    if role == _SPECIALIST:
        return raw in call.agents
    if call.visitor is not None:  # the phone took the call over: the kiosk is out of it
        return role == _VISITOR and raw == call.visitor
    return role == _TERMINAL and raw == call.terminal_id


def terminal_of(call: Call) -> Identity:
    """The calling terminal, as it said hello (kept in the call's context)."""
    return decode_identity(call.context["terminal"])


def caller_of(call: Call) -> Identity:
    """Who calls: the terminal as it said hello, or the phone that took the call over (it
    stands for that terminal: same name and site)."""
    terminal = terminal_of(call)
    if call.visitor is None:
        return terminal
    return visitor_of(terminal, call.visitor, call.id)


def visitor_of(terminal: Identity, visitor_id: str, call_id: str) -> Identity:
    return Identity(role=Role.VISITOR, id=visitor_id, name=terminal.name, site=terminal.site,
                    call_id=call_id)
