"""Typed storage errors, translated to HTTP or protocol errors only at the edge."""

from __future__ import annotations


class StorageError(Exception):
    """Base of every error the storage layer raises on purpose."""


class AlreadyExists(StorageError):
    """A record with that key (username, site id, terminal id, token...) exists."""


class NotFound(StorageError):
    """A referenced record does not exist."""


class UnknownUser(NotFound):
    """The user id is not in `users`."""


class UnknownSite(NotFound):
    """The site id is not in `sites`."""


class UnknownSession(NotFound):
    """A log event names a session that was never queued."""


class InvalidRecord(StorageError, ValueError):
    """A value is outside its domain (role, site kind, skill level...)."""


class InvalidEvent(StorageError, ValueError):
    """A log event is malformed; nothing of its batch was written."""


class SessionClosed(InvalidEvent):
    """A lifecycle event for a session already in a final state."""


class BadCursor(StorageError, ValueError):
    """A pagination cursor that this layer did not hand out."""


class DatabaseClosed(StorageError):
    """The `Database` was used after `close()`."""
