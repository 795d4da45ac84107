"""Durable storage: accounts, sites and terminals, the session log, queue figures."""

from server.storage.db import Database
from server.storage.errors import (
    AlreadyExists,
    BadCursor,
    DatabaseClosed,
    InvalidEvent,
    InvalidRecord,
    NotFound,
    SessionClosed,
    StorageError,
    UnknownSession,
    UnknownSite,
    UnknownUser,
)
from server.storage.records import (
    HourlyWaits,
    Login,
    Participant,
    QueueFigures,
    SessionDetail,
    SessionEvent,
    SessionSummary,
    Site,
    Terminal,
    User,
)

__all__ = [
    "AlreadyExists",
    "BadCursor",
    "Database",
    "DatabaseClosed",
    "HourlyWaits",
    "InvalidEvent",
    "InvalidRecord",
    "Login",
    "NotFound",
    "Participant",
    "QueueFigures",
    "SessionClosed",
    "SessionDetail",
    "SessionEvent",
    "SessionSummary",
    "Site",
    "StorageError",
    "Terminal",
    "UnknownSession",
    "UnknownSite",
    "UnknownUser",
    "User",
]
