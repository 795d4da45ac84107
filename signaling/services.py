"""Everything a switchboard step may use: one frozen record of the node's services.

Steps are plain functions of (`Services`, who, message) that fill an `Outbox`;
none of them holds state of its own or reaches the switchboard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .backend import MessageBus, Presences, Router, Scheduler, SessionLog
from .identity import Identity
from .joint_actions import JointWork
from .link import ClusterLink
from .model import QueueConfig
from .outbox import Outbox
from .queue_status import QueueStatus
from .recorders import RecordingSetup

IceServers = Callable[[Identity], list[dict[str, Any]]]
"""The ICE servers one connection is told in `welcome` (TURN credentials may be its own)."""


def static_ice_servers(servers: Sequence[dict[str, Any]] | None) -> IceServers:
    """The same `[ice] servers` for everyone."""
    fixed = [dict(s) for s in servers or ()]

    def provide(who: Identity) -> list[dict[str, Any]]:
        del who
        return [dict(s) for s in fixed]

    return provide


def no_ice_servers(who: Identity) -> list[dict[str, Any]]:
    """No STUN or TURN: host candidates only (a LAN, or tests)."""
    del who
    return []


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    queues: Mapping[str, QueueConfig]
    router: Router
    bus: MessageBus
    scheduler: Scheduler
    presences: Presences
    session_log: SessionLog
    clock: Callable[[], float]
    link: ClusterLink
    status: QueueStatus  # live positions and queue figures
    resume_grace_s: float = 30.0
    ice_servers: IceServers = no_ice_servers
    node_id: str = "local"
    recording: RecordingSetup | None = None  # None: recording is off
    actions: JointWork | None = None  # None: joint actions are off

    def outbox(self) -> Outbox:
        return Outbox(self.clock)

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
