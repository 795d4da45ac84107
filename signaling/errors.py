"""Domain refusals: a request the service will not carry out, with a code for the client."""

from __future__ import annotations


class Refused(Exception):
    """Turned into `error {code, message}` at the edge; nothing changed state."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# The code of a step refused because the other nodes took this one for dead (a stall
# longer than the heartbeat's TTL): the survivors own its principals now, and its clients
# reconnect (`server/cluster/keys.fence`).
FENCED = "fenced"
