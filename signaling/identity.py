"""Who is on the other end of a connection, once `hello` is authenticated."""

from __future__ import annotations

from typing import Literal

import msgspec

from .messages import SiteInfo, TerminalInfo

Role = Literal["terminal", "specialist", "recorder"]


def principal_of(role: str, raw_id: str) -> str:
    """The participant id used on the wire and in routing: `terminal:T1`, `specialist:alice`."""
    return f"{role}:{raw_id}"


class Identity(msgspec.Struct, kw_only=True, frozen=True):
    role: Role
    id: str
    name: str
    site: SiteInfo | None = None
    skills: dict[str, int] = msgspec.field(default_factory=dict)
    department: str | None = None

    @property
    def principal(self) -> str:
        return principal_of(self.role, self.id)

    def terminal_info(self) -> TerminalInfo:
        site = self.site or SiteInfo(id="", name="", kind="other")
        return TerminalInfo(id=self.id, name=self.name, site=site)
