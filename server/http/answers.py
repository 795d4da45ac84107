"""The JSON answers of the API routes that have a fixed shape: handlers build these, and the
OpenAPI document (server/http/openapi.py) takes its response schemas from the same types."""

from __future__ import annotations

import datetime as dt

import msgspec


class LoginReply(msgspec.Struct):
    token: str
    role: str
    expires_at: dt.datetime
    next: str
    must_change_password: bool = False  # a one-time password: `next` is /password


class Me(msgspec.Struct):
    username: str
    role: str
    name: str
    department: str | None
    skills: dict[str, int]
    unit_id: str | None = None
    must_change_password: bool = False


class Ticket(msgspec.Struct):
    ticket: str


class Status(msgspec.Struct):
    status: str


class Site(msgspec.Struct):
    id: str
    name: str
    kind: str
    unit_id: str | None = None


class Sites(msgspec.Struct):
    sites: list[Site]


class NewTerminal(msgspec.Struct):
    id: str
    token: str


class Revoked(msgspec.Struct):
    id: str
    revoked: bool
