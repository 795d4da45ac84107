"""Client -> server frames of protocol v1 (`docs/protocol.md`), each decoded at the edge
into one of these structs (`signaling.messages.decode`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from signaling import limits as lim
from signaling.limits import Id

from .message_base import (
    ChatText,
    Enterprise,
    IceCandidate,
    Message,
    SessionDescription,
)


class Hello(Message, tag="hello"):
    """`call_id` (with `resume`): the call the client was in or waiting for when its socket
    was lost. Its end, if it ended meanwhile, is said on resume (`call.ended` with the
    reason the session log has, or, not logged yet, the one its end gave, else `ended`):
    its `call.ended` went to no socket."""

    token: lim.Token
    resume: Annotated[str, msgspec.Meta(max_length=256)] | None = None
    capacity: Annotated[int, msgspec.Meta(ge=0, le=1000)] | None = None  # recorders only
    call_id: Id | None = None


class Ping(Message, tag="ping"):
    pass


AppointmentCode = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class CallRequest(Message, tag="call.request"):
    """`appointment`: the code of a booking for this queue (docs/appointments.md); within
    its window the call waits ahead of walk-ins, outside it `error appointment_window`.
    `request_id`: a key the kiosk chooses for this request. A request whose reply never
    came (its socket lost) is sent again with the same key once the socket is back: while
    the terminal's call made by that key lives, the answer is that call again
    (`call.queued` or `call.connected`, `resumed: true`), never a second call; once that
    call has ended, a copy of the request still to come (up to 10 minutes) makes none
    either (`error request_done`, with the key as `request_id`: a kiosk on to its next
    visit tells it from a refusal of its current request). A terminal has one live call at
    a time, whatever the keys (`error call_in_progress`)."""

    queue: Id
    enterprise: Enterprise | None = None
    appointment: AppointmentCode | None = None
    request_id: Id | None = None


class CallCancel(Message, tag="call.cancel"):
    """The caller gives up waiting. A call answered meanwhile is hung up: the caller is told
    `call.connected` (`resumed`: it may have heard it) then `call.ended` (reason `hangup`).
    The answer's own `call.connected`, relayed from the answering node, may then come after
    that end: a caller drops a `call.connected` of a call it heard ended."""

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


# ---- a visit finished in the session: phone hand-off, captured documents, forms -----


class CallHandoff(Message, tag="call.handoff"):
    """Terminal -> server: let a phone take this waiting call over (answered by
    `call.handoff_ready`)."""

    call_id: Id


class DocumentRequest(Message, tag="document.request"):
    """Specialist -> server -> the call's terminal: take a full-resolution still of what the
    camera shows and upload it (`POST /api/sessions/{id}/documents`). The server adds
    `from` (the asking specialist) when it passes it on."""

    call_id: Id


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
