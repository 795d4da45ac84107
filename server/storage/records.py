"""Result types of the storage layer: frozen msgspec Structs, ready for JSON.

No record carries a secret: password and token hashes stay inside storage,
except `Login`, which exists only to hand the hash to the password check.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final, Literal

import msgspec

Role = Literal["specialist", "manager"]
SiteKind = Literal["park", "market_office", "community", "service_centre", "other"]

UNIT_LEVELS: Final[tuple[str, ...]] = ("city", "district", "subdistrict", "village")
ROLES: Final[frozenset[str]] = frozenset({"specialist", "manager"})
SITE_KINDS: Final[frozenset[str]] = frozenset(
    {"park", "market_office", "community", "service_centre", "other"}
)


class User(msgspec.Struct, frozen=True, kw_only=True):
    """A specialist or manager account; `skills` maps queue id -> level (1 = best)."""

    id: str
    username: str
    role: str
    name: str
    department: str | None
    skills: dict[str, int]
    disabled: bool
    created_at: dt.datetime
    unit_id: str | None = None
    must_change_password: bool = False


class Login(msgspec.Struct, frozen=True, kw_only=True):
    """A user with the stored argon2id hash, for checking a password only."""

    user: User
    password_hash: str


class Site(msgspec.Struct, frozen=True, kw_only=True):
    """A place with virtual-window terminals."""

    id: str
    name: str
    kind: str
    created_at: dt.datetime
    unit_id: str | None = None


class Terminal(msgspec.Struct, frozen=True, kw_only=True):
    """One virtual-window screen, with the site it was provisioned for."""

    id: str
    name: str
    site: Site
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    last_seen_at: dt.datetime | None


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the session list, as projected from the log.

    `answered_at`, `wait_s` and `specialist_*` are those of the first answer.
    """

    id: str
    call_id: str
    queue: str
    state: str
    site_id: str | None
    site_name: str | None
    terminal_id: str | None
    terminal_name: str | None
    enterprise_name: str | None
    enterprise_uscc: str | None
    created_at: dt.datetime
    answered_at: dt.datetime | None
    ended_at: dt.datetime | None
    wait_s: float | None
    talk_s: float | None
    end_reason: str | None
    specialist_id: str | None
    specialist_name: str | None
    node_id: str | None
    outcome: str | None
    notes: str | None
    rating: int | None
    rating_comment: str | None


class Participant(msgspec.Struct, frozen=True, kw_only=True):
    """Someone who took part in a session (terminal, specialist, recorder...)."""

    participant_id: str
    role: str
    principal_id: str | None
    name: str | None
    joined_at: dt.datetime
    left_at: dt.datetime | None
    left_reason: str | None


class SessionEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One stored log entry; `id` gives the order of the timeline."""

    id: int
    type: str
    ts: dt.datetime
    session_id: str | None
    call_id: str | None
    actor: str | None
    data: dict[str, Any]


class SessionDetail(SessionSummary, frozen=True, kw_only=True):
    """A session with its participants and its whole ordered timeline."""

    participants: list[Participant]
    events: list[SessionEvent]


class QueueFigures(msgspec.Struct, frozen=True, kw_only=True):
    """Service figures of one queue since a point in time.

    `service_level` is answered within target / (answered + abandoned) in %,
    None before any call was answered or abandoned.
    """

    queue: str
    offered: int
    answered: int
    abandoned: int
    rejected: int
    avg_wait_s: float | None
    answered_within_target: int
    service_level: float | None


class HourlyWaits(msgspec.Struct, frozen=True, kw_only=True):
    """Calls that arrived in one local hour of the day, and their average wait."""

    hour: int
    calls: int
    answered: int
    avg_wait_s: float | None


class Unit(msgspec.Struct, frozen=True, kw_only=True):
    """One service centre level of the city: city, district, sub-district or village."""

    id: str
    name: str
    level: str
    parent_id: str | None
    created_at: dt.datetime


class AccountChange(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the account audit trail: who changed which account, when, and how."""

    id: int
    ts: dt.datetime
    actor: str
    username: str
    action: str
    data: dict[str, Any]
