"""Everything a switchboard step may use: one frozen record of the node's services.

Steps are plain functions of (`Services`, who, message) that fill an `Outbox`;
none of them holds state of its own or reaches the switchboard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .appointments import Appointments
from .backend import HandoffTickets, MessageBus, Presences, Router, Scheduler, SessionLog
from .forms import FormDesk
from .identity import Identity
from .joint_actions import JointWork
from .link import ClusterLink
from .model import QueueConfig
from .outbox import Outbox
from .queue_status import QueueStatus
from .recorders import RecordingSetup

IceServersProvider = Callable[[Identity], list[dict[str, Any]]]
"""The ICE servers one connection is told in `welcome` (TURN credentials may be its own:
`server.turn.TurnCredentials`)."""


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
    ice_servers: IceServersProvider = no_ice_servers
    node_id: str = "local"
    recording: RecordingSetup | None = None  # None: recording is off
    actions: JointWork | None = None  # None: joint actions are off
    appointments: Appointments | None = None  # None: `call.request` names no appointment
    handoffs: HandoffTickets | None = None  # None: no phone hand-off (`signaling.handoff`)
    forms: FormDesk | None = None  # None: forms are off

    def outbox(self) -> Outbox:
        return Outbox(self.clock)

    def utcnow(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)
