"""Server -> client frames of protocol v1 (`docs/protocol.md`)."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .client_messages import ActionEnterprise
from .message_base import (
    PROTOCOL_VERSION,
    Enterprise,
    FrameKind,
    IceCandidate,
    Message,
    SessionDescription,
)


class QueueRef(msgspec.Struct, kw_only=True):
    id: str
    name: str


class SiteInfo(msgspec.Struct, kw_only=True):
    id: str
    name: str
    kind: str


class TerminalInfo(msgspec.Struct, kw_only=True):
    id: str
    name: str
    site: SiteInfo


class Participant(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    role: Literal["terminal", "specialist", "recorder", "visitor"]
    name: str
    # A recorder's: the segment it records now. A party that heard another one (its socket
    # away while the recorder reconnected) offers to it anew: its old link is dead.
    segment: int | None = None


class QueueStatusItem(msgspec.Struct, kw_only=True):
    id: str
    name: str
    open: bool
    waiting: int
    longest_wait_s: float
    estimated_wait_s: float
    agents_available: int
    hours: str | None = None  # opening hours on working days ("09:00-12:00,13:30-17:30")
    opens_at: str | None = None  # when closed by its hours: the next opening (ISO 8601)
    appointments: bool = False  # takes bookings (`appointments_per_slot` > 0)


class Welcome(Message, tag="welcome"):
    frame_kind = FrameKind.REPLY
    role: str
    id: str
    participant_id: str
    name: str
    resume: str
    resumed: bool
    ice_servers: list[dict[str, Any]]
    queues: list[QueueRef]
    site: SiteInfo | None = None
    protocol: int = PROTOCOL_VERSION


class IceServers(Message, tag="ice.servers"):
    """Fresh TURN credentials before the ones of `welcome` expire; use them for the next
    ICE restart (and new peer connections)."""

    frame_kind = FrameKind.NOTICE
    ice_servers: list[dict[str, Any]]


class Error(Message, tag="error"):
    """A refusal. `refused`, `call_id` and `request_id` (a `call.request`'s key) say which
    request it answers, when known."""

    frame_kind = FrameKind.REPLY
    code: str
    message: str
    refused: str | None = None
    call_id: str | None = None
    request_id: str | None = None


class Pong(Message, tag="pong"):
    frame_kind = FrameKind.REPLY


class QueueStatus(Message, tag="queue.status"):
    frame_kind = FrameKind.NOTICE
    queues: list[QueueStatusItem]


class CallQueued(Message, tag="call.queued"):
    frame_kind = FrameKind.EVENT
    call_id: str
    queue: str
    position: int
    estimated_wait_s: float
    resumed: bool = False


class CallPosition(Message, tag="call.position"):
    frame_kind = FrameKind.EVENT
    call_id: str
    position: int
    estimated_wait_s: float


class CallRejected(Message, tag="call.rejected", omit_defaults=True):
    frame_kind = FrameKind.EVENT
    queue: str
    reason: str
    opens_at: str | None = None  # reason "closed" by opening hours: the next opening (ISO)


class CallRequeued(Message, tag="call.requeued"):
    frame_kind = FrameKind.EVENT
    call_id: str
    position: int
    estimated_wait_s: float
    reason: str


class AgentStatusChanged(Message, tag="agent.status"):
    frame_kind = FrameKind.EVENT
    status: str
    reason: str = ""


class CallOffered(Message, tag="call.offered"):
    """A call rings this specialist. `offer` numbers the call's offers (1, 2, ...): the
    same call may be offered to the same specialist again after a withdrawal."""

    frame_kind = FrameKind.EVENT
    call_id: str
    offer: int
    queue: str
    terminal: TerminalInfo
    ring_timeout_s: float
    enterprise: Enterprise | None = None
    overflow_from: str | None = None
    joins: str | None = None  # an invitation into this connected call (another department)
    invited_by: str | None = None
    transfer: bool = False


class CallWithdrawn(Message, tag="call.withdrawn"):
    """The offer `offer` of `call_id` is over (taken, cancelled, timed out). Match it by
    `call_id` and `offer`: with Redis routing the next `call.offered` may arrive before
    it, and an offer withdrawn as it was made may be withdrawn before its `call.offered`
    arrives (then do not ring)."""

    frame_kind = FrameKind.EVENT
    call_id: str
    offer: int
    reason: str


class CallConnected(Message, tag="call.connected"):
    frame_kind = FrameKind.EVENT
    call_id: str
    session_id: str
    you: str
    participants: list[Participant]
    recording: bool = False
    resumed: bool = False


class CallEnded(Message, tag="call.ended"):
    frame_kind = FrameKind.EVENT
    call_id: str
    session_id: str
    reason: str
    by: str | None = None


class ChatMessage(Message, tag="chat.message"):
    frame_kind = FrameKind.CHAT
    call_id: str
    sender: str = msgspec.field(name="from")
    name: str
    text: str
    ts: str


class InvitationStatus(Message, tag="invitation"):
    """How an invitation into your call is going: ringing, accepted, declined, cancelled."""

    frame_kind = FrameKind.EVENT
    call_id: str
    invitation_id: str
    state: str
    queue: str
    specialist: str | None = None
    transfer: bool = False


class ParticipantReconnected(Message, tag="participant.reconnected"):
    frame_kind = FrameKind.EVENT
    call_id: str
    participant: str


class RtcDescriptionRelay(Message, tag="rtc.description"):
    frame_kind = FrameKind.EVENT
    call_id: str
    to: str
    sender: str = msgspec.field(name="from")
    description: SessionDescription


class RtcCandidateRelay(Message, tag="rtc.candidate"):
    frame_kind = FrameKind.EVENT
    call_id: str
    to: str
    sender: str = msgspec.field(name="from")
    candidate: IceCandidate | None


class Saved(Message, tag="saved"):
    frame_kind = FrameKind.REPLY
    what: Literal["rating", "wrapup"]
    session_id: str


class ActionStep(msgspec.Struct, kw_only=True):
    id: str
    department: str
    signed_by: str | None = None
    signed_at: str | None = None


class ActionUpdated(Message, tag="action.updated"):
    """Sent to every participant of the action's call (and its signer) on every change."""

    frame_kind = FrameKind.EVENT
    action_id: str
    action: str
    state: Literal["open", "completed", "rejected"]
    steps: list[ActionStep]
    enterprise: ActionEnterprise
    fields: dict[str, str]
    started_by: str
    call_id: str | None = None
    session_id: str | None = None
    rejected_by: str | None = None
    reason: str | None = None


class ParticipantJoined(Message, tag="participant.joined"):
    """A participant joined a connected call (e.g. a recorder taking over): offer to it."""

    frame_kind = FrameKind.EVENT
    call_id: str
    participant: Participant


class ParticipantLeft(Message, tag="participant.left"):
    """A participant left a connected call (e.g. its recorder was lost): close its link."""

    frame_kind = FrameKind.EVENT
    call_id: str
    participant: str
    reason: str


class RecordStart(Message, tag="record.start"):
    """Server -> recorder: record this session; its parties will offer to you."""

    frame_kind = FrameKind.EVENT
    call_id: str
    session_id: str
    segment: int
    participants: list[Participant]


class RecordStop(Message, tag="record.stop"):
    """Server -> recorder: the session is over; close its segments and report them."""

    frame_kind = FrameKind.EVENT
    call_id: str
    session_id: str
    reason: str


class FormPresented(Message, tag="form.presented"):
    """To every participant: a form is shown; `url` serves its pages (HTML) to them."""

    frame_kind = FrameKind.EVENT
    call_id: str
    action_id: str
    form_id: str
    url: str


class FormSigned(Message, tag="form.signed"):
    """To every participant: the visitor signed; `sha256` is the stored signed PDF's."""

    frame_kind = FrameKind.EVENT
    form_id: str
    sha256: str


class FormDeclined(Message, tag="form.declined"):
    """To every participant: the visitor refused to sign."""

    frame_kind = FrameKind.EVENT
    form_id: str


# ---- a visit finished in the session: phone hand-off, captured documents ------------


class CallHandoffReady(Message, tag="call.handoff_ready"):
    """Server -> terminal: the page a phone opens to take the call over. `url` is
    `/m/<ticket>` (single use; expires with the call or at `expires_at`, ISO 8601 UTC);
    `GET <url>/qr.svg` is its QR code."""

    frame_kind = FrameKind.EVENT
    call_id: str
    url: str
    expires_at: str


class CallHandedOff(Message, tag="call.handed_off"):
    """Server -> terminal: a phone took the call over; the terminal is free again."""

    frame_kind = FrameKind.EVENT
    call_id: str


class DocumentRequestRelay(Message, tag="document.request"):
    frame_kind = FrameKind.EVENT
    call_id: str
    sender: str = msgspec.field(name="from")


class DocumentInfo(msgspec.Struct, kw_only=True):
    """A stored still: `GET /api/documents/{id}` serves it (`kind` "jpeg" or "png")."""

    id: str
    kind: str
    sha256: str
    width: int
    height: int


class DocumentAdded(Message, tag="document.added"):
    """A document was captured and stored in the call's session; to every participant."""

    frame_kind = FrameKind.EVENT
    call_id: str
    document: DocumentInfo
