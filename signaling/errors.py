"""Domain refusals: a request the service will not carry out, with a code for the client."""

from __future__ import annotations


class Refused(Exception):
    """Turned into `error {code, message}` at the edge; nothing changed state."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
