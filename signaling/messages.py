"""Protocol v1: every WebSocket frame as a typed message.

Frames from the network are decoded into one of the `Inbound` structs at the
edge (`decode`); everything inside works on typed values. Outbound messages
are structs too, so `docs/protocol.md` can be generated from this module.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from signaling import limits as lim
from signaling.limits import Id

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024

ShortText = lim.OptionalName
ChatText = lim.Text
Sdp = Annotated[str, msgspec.Meta(max_length=60_000)]


class Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, kw_only=True):
    """Base of every frame: `type` is the tag."""


class Enterprise(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    name: ShortText | None = None
    uscc: Annotated[str, msgspec.Meta(max_length=18)] | None = None


class SessionDescription(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    type: Literal["offer", "answer", "pranswer", "rollback"]
    sdp: Sdp = ""


class IceCandidate(msgspec.Struct, kw_only=True, omit_defaults=True):
    candidate: Annotated[str, msgspec.Meta(max_length=1024)]
    sdpMid: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    sdpMLineIndex: Annotated[int, msgspec.Meta(ge=0, le=64)] | None = None
    usernameFragment: Annotated[str, msgspec.Meta(max_length=256)] | None = None


# ---- client -> server -------------------------------------------------------------


class Hello(Message, tag="hello"):
    token: lim.Token
    resume: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None  # recorders only


class Ping(Message, tag="ping"):
    pass


AppointmentCode = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class CallRequest(Message, tag="call.request"):
    """`appointment`: the code of a booking for this queue (docs/appointments.md); within
    its window the call waits ahead of walk-ins, outside it `error appointment_window`."""

    queue: Id
    enterprise: Enterprise | None = None
    appointment: AppointmentCode | None = None


class CallCancel(Message, tag="call.cancel"):
    call_id: Id


class AgentStatus(Message, tag="agent.status"):
    status: Literal["available", "away"]


OfferNumber = Annotated[int, msgspec.Meta(ge=1)]


class CallAccept(Message, tag="call.accept"):
    """Answer an offer. Send the `offer` number of the `call.offered` answered: a call
    may be offered to the same specialist again after a withdrawal, and an answer sent
    as the first offer ended must not take the next one, not seen yet (it is refused
    with `offer_gone`; the new offer follows). Without `offer`, whichever offer of
    `call_id` rings now is answered."""

    call_id: Id
    offer: OfferNumber | None = None


class CallDecline(Message, tag="call.decline"):
    """Decline an offer; `offer` as for `call.accept`."""

    call_id: Id
    offer: OfferNumber | None = None


class CallHangup(Message, tag="call.hangup"):
    call_id: Id


class AgentWrapupDone(Message, tag="agent.wrapup_done"):
    pass


class CallInvite(Message, tag="call.invite"):
    """Bring another department into the session: a queue, or a named specialist."""

    call_id: Id
    queue: Id | None = None
    specialist: Id | None = None


class CallTransfer(Message, tag="call.transfer"):
    """Hand the terminal over: the sender leaves once the new specialist has joined."""

    call_id: Id
    queue: Id | None = None
    specialist: Id | None = None


class RtcDescription(Message, tag="rtc.description"):
    call_id: Id
    to: Id
    description: SessionDescription


class RtcCandidate(Message, tag="rtc.candidate"):
    call_id: Id
    to: Id
    candidate: IceCandidate | None


class ChatSend(Message, tag="chat.send"):
    call_id: Id
    text: ChatText


class SessionRate(Message, tag="session.rate"):
    session_id: Id
    score: Annotated[int, msgspec.Meta(ge=1, le=5)]
    comment: lim.OptionalText | None = None


class SessionWrapup(Message, tag="session.wrapup"):
    session_id: Id
    outcome: Literal["resolved", "follow_up", "referred"]
    notes: lim.Notes = ""


class ActionEnterprise(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The market entity of a joint action; the USCC is checked by the domain (GB 32100)."""

    name: lim.Name
    uscc: lim.Uscc


class ActionStart(Message, tag="action.start"):
    call_id: Id
    action: Id
    enterprise: ActionEnterprise
    fields: dict[Id, lim.FieldValue] = msgspec.field(
        default_factory=dict)


class ActionSign(Message, tag="action.sign"):
    action_id: Id
    step: Id


class ActionReject(Message, tag="action.reject"):
    action_id: Id
    reason: lim.Text


class RecordSegment(Message, tag="record.segment"):
    """Recorder -> server: a segment file was created for one party (state `recording`)."""

    call_id: Id
    session_id: Id
    participant_id: Id
    segment: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class RecordingManifest(msgspec.Struct, kw_only=True):
    """What a closed segment is: written by the recorder, stored by the server."""

    segment: Annotated[int, msgspec.Meta(ge=1, le=100_000)]
    state: Literal["finished", "failed"]
    reason: lim.OptionalText | None = None
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    started_at_unix: float | None = None
    duration_s: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    offsets: dict[str, float] = msgspec.field(default_factory=dict)
    codecs: dict[str, str] = msgspec.field(default_factory=dict)
    size_bytes: Annotated[int, msgspec.Meta(ge=0)] | None = None
    sha256: Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")] | None = None
    stats: dict[str, Any] = msgspec.field(default_factory=dict)


class RecordManifest(Message, tag="record.manifest"):
    """Recorder -> server: one party's segment is closed; its manifest."""

    call_id: Id
    session_id: Id
    participant_id: Id
    manifest: RecordingManifest


# ---- phone hand-off (issue 13, "Leave the kiosk, keep your place") --------------------


class CallHandoff(Message, tag="call.handoff"):
    """Terminal -> server: let a phone take this waiting call over (answered by
    `call.handoff_ready`)."""

    call_id: Id


class CallHandoffReady(Message, tag="call.handoff_ready"):
    """Server -> terminal: the page a phone opens to take the call over. `url` is
    `/m/<ticket>` (single use; expires with the call or at `expires_at`, ISO 8601 UTC);
    `GET <url>/qr.svg` is its QR code."""

    call_id: str
    url: str
    expires_at: str


class CallHandedOff(Message, tag="call.handed_off"):
    """Server -> terminal: a phone took the call over; the terminal is free again."""

    call_id: str


# ---- captured documents (issue 14) ------------------------------------------------


class DocumentRequest(Message, tag="document.request"):
    """Specialist -> server -> the call's terminal: take a full-resolution still of what the
    camera shows and upload it (`POST /api/sessions/{id}/documents`). The server adds
    `from` (the asking specialist) when it passes it on."""

    call_id: Id


class DocumentRequestRelay(Message, tag="document.request"):
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

    call_id: str
    document: DocumentInfo
# ---- forms generated and signed (issue 14) -----------------------------------------

Point = tuple[lim.Coordinate, lim.Coordinate]
Stroke = Annotated[list[Point], msgspec.Meta(min_length=1, max_length=lim.SIGNATURE_POINTS_MAX)]


class Signature(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Strokes drawn on a pad of `width` x `height` CSS pixels; points lie within the pad."""

    width: lim.PadSide
    height: lim.PadSide
    strokes: Annotated[list[Stroke], msgspec.Meta(min_length=1,
                                                  max_length=lim.SIGNATURE_STROKES_MAX)]


class FormPresent(Message, tag="form.present"):
    """Specialist: show the form of a joint action of this call to the visitor."""

    call_id: Id
    action_id: Id


class FormSign(Message, tag="form.sign"):
    """The session's terminal (or its hand-off phone): sign a presented form. `signature`:
    `width` and `height` of the pad (CSS px, 1-4096) and its `strokes`, each a list of
    `[x, y]` points inside the pad; 1-64 strokes, at most 4000 points in all."""

    form_id: Id
    signature: Signature


class FormDecline(Message, tag="form.decline"):
    """The session's terminal (or its hand-off phone): refuse to sign a presented form."""

    form_id: Id


Inbound = (
    Hello | Ping | CallRequest | CallCancel | AgentStatus | CallAccept | CallDecline
    | CallHangup | AgentWrapupDone | CallInvite | CallTransfer | RtcDescription | RtcCandidate
    | ChatSend | SessionRate | SessionWrapup | RecordSegment | RecordManifest
    | ActionStart | ActionSign | ActionReject
    | CallHandoff
    | DocumentRequest
    | FormPresent | FormSign | FormDecline
)

# ---- server -> client -------------------------------------------------------------


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


class Participant(msgspec.Struct, kw_only=True):
    id: str
    role: Literal["terminal", "specialist", "recorder", "visitor"]
    name: str


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

    ice_servers: list[dict[str, Any]]


class Error(Message, tag="error"):
    """A refusal. `refused` and `call_id` say which request it answers, when known."""

    code: str
    message: str
    refused: str | None = None
    call_id: str | None = None


class Pong(Message, tag="pong"):
    pass


class QueueStatus(Message, tag="queue.status"):
    queues: list[QueueStatusItem]


class CallQueued(Message, tag="call.queued"):
    call_id: str
    queue: str
    position: int
    estimated_wait_s: float
    resumed: bool = False


class CallPosition(Message, tag="call.position"):
    call_id: str
    position: int
    estimated_wait_s: float


class CallRejected(Message, tag="call.rejected", omit_defaults=True):
    queue: str
    reason: str
    opens_at: str | None = None  # reason "closed" by opening hours: the next opening (ISO)


class CallRequeued(Message, tag="call.requeued"):
    call_id: str
    position: int
    estimated_wait_s: float
    reason: str


class AgentStatusChanged(Message, tag="agent.status"):
    status: str
    reason: str = ""


class CallOffered(Message, tag="call.offered"):
    """A call rings this specialist. `offer` numbers the call's offers (1, 2, ...): the
    same call may be offered to the same specialist again after a withdrawal."""

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

    call_id: str
    offer: int
    reason: str


class CallConnected(Message, tag="call.connected"):
    call_id: str
    session_id: str
    you: str
    participants: list[Participant]
    recording: bool = False
    resumed: bool = False


class CallEnded(Message, tag="call.ended"):
    call_id: str
    session_id: str
    reason: str
    by: str | None = None


class ChatMessage(Message, tag="chat.message"):
    call_id: str
    sender: str = msgspec.field(name="from")
    name: str
    text: str
    ts: str


class InvitationStatus(Message, tag="invitation"):
    """How an invitation into your call is going: ringing, accepted, declined, cancelled."""

    call_id: str
    invitation_id: str
    state: str
    queue: str
    specialist: str | None = None
    transfer: bool = False


class ParticipantReconnected(Message, tag="participant.reconnected"):
    call_id: str
    participant: str


class RtcDescriptionRelay(Message, tag="rtc.description"):
    call_id: str
    to: str
    sender: str = msgspec.field(name="from")
    description: SessionDescription


class RtcCandidateRelay(Message, tag="rtc.candidate"):
    call_id: str
    to: str
    sender: str = msgspec.field(name="from")
    candidate: IceCandidate | None


class Saved(Message, tag="saved"):
    what: Literal["rating", "wrapup"]
    session_id: str


class ActionStep(msgspec.Struct, kw_only=True):
    id: str
    department: str
    signed_by: str | None = None
    signed_at: str | None = None


class ActionUpdated(Message, tag="action.updated"):
    """Sent to every participant of the action's call (and its signer) on every change."""

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

    call_id: str
    participant: Participant


class ParticipantLeft(Message, tag="participant.left"):
    """A participant left a connected call (e.g. its recorder was lost): close its link."""

    call_id: str
    participant: str
    reason: str


class RecordStart(Message, tag="record.start"):
    """Server -> recorder: record this session; its parties will offer to you."""

    call_id: str
    session_id: str
    segment: int
    participants: list[Participant]


class RecordStop(Message, tag="record.stop"):
    """Server -> recorder: the session is over; close its segments and report them."""

    call_id: str
    session_id: str
    reason: str


class FormPresented(Message, tag="form.presented"):
    """To every participant: a form is shown; `url` serves its pages (HTML) to them."""

    call_id: str
    action_id: str
    form_id: str
    url: str


class FormSigned(Message, tag="form.signed"):
    """To every participant: the visitor signed; `sha256` is the stored signed PDF's."""

    form_id: str
    sha256: str


class FormDeclined(Message, tag="form.declined"):
    """To every participant: the visitor refused to sign."""

    form_id: str


Outbound = (
    Welcome | Error | Pong | QueueStatus | CallQueued | CallPosition | CallRejected
    | CallRequeued | AgentStatusChanged | CallOffered | CallWithdrawn | CallConnected
    | CallEnded | ChatMessage | ParticipantJoined | ParticipantLeft | InvitationStatus
    | ParticipantReconnected | RtcDescriptionRelay | RtcCandidateRelay | Saved
    | RecordStart | RecordStop | ActionUpdated | IceServers
    | CallHandoffReady | CallHandedOff
    | DocumentRequestRelay | DocumentAdded
    | FormPresented | FormSigned | FormDeclined
)

_decoder = msgspec.json.Decoder(Inbound)
_encoder = msgspec.json.Encoder()


class InvalidMessage(Exception):
    """A frame that is not a valid protocol message; `str()` says what is wrong."""


def decode(frame: str | bytes) -> Inbound:
    """Decode and validate one frame, or raise InvalidMessage naming the problem."""
    if len(frame) > MAX_FRAME_BYTES:
        raise InvalidMessage(f"frame of {len(frame)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        message: Inbound = _decoder.decode(frame)
        return message
    except RecursionError:
        raise InvalidMessage("JSON nested too deeply") from None
    except msgspec.ValidationError as exc:
        raise InvalidMessage(_explain(str(exc), frame)) from None
    except msgspec.DecodeError as exc:
        raise InvalidMessage(f"not JSON: {exc}") from None


def _explain(detail: str, frame: str | bytes) -> str:
    if "Invalid value" in detail and "$.type" in detail:
        return f"unknown message type ({detail})"
    if "missing required field `type`" in detail:
        return "a message needs a string field `type`"
    del frame
    return detail


def tag_of(message: Message | type[Message]) -> str:
    kind = message if isinstance(message, type) else type(message)
    return str(kind.__struct_config__.tag)


def encode(message: Message) -> bytes:
    return _encoder.encode(message)
