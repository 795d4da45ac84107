"""Protocol v1: every WebSocket frame as a typed message.

Frames from the network are decoded into one of the `Inbound` structs at the
edge (`decode`); everything inside works on typed values. Outbound messages
are structs too, so `docs/protocol.md` can be generated from them. The frames
live in `client_messages` and `server_messages` (their base in `message_base`);
this module is the one name the rest of the code imports them by.
"""

from __future__ import annotations

import msgspec

from .client_messages import (
    ActionEnterprise,
    ActionReject,
    ActionSign,
    ActionStart,
    AgentStatus,
    AgentWrapupDone,
    AppointmentCode,
    CallAccept,
    CallCancel,
    CallDecline,
    CallHandoff,
    CallHangup,
    CallInvite,
    CallRequest,
    CallTransfer,
    ChatSend,
    DocumentRequest,
    FormDecline,
    FormPresent,
    FormSign,
    Hello,
    OfferNumber,
    Ping,
    Point,
    RecordingManifest,
    RecordManifest,
    RecordSegment,
    RtcCandidate,
    RtcDescription,
    SessionRate,
    SessionWrapup,
    Signature,
    Stroke,
)
from .message_base import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    ChatText,
    Enterprise,
    FrameKind,
    IceCandidate,
    Message,
    Sdp,
    SessionDescription,
    ShortText,
    frame_kind_of,
)
from .server_messages import (
    ActionStep,
    ActionUpdated,
    AgentStatusChanged,
    CallConnected,
    CallEnded,
    CallHandedOff,
    CallHandoffReady,
    CallOffered,
    CallPosition,
    CallQueued,
    CallRejected,
    CallRequeued,
    CallWithdrawn,
    ChatMessage,
    DocumentAdded,
    DocumentInfo,
    DocumentRequestRelay,
    Error,
    FormDeclined,
    FormPresented,
    FormSigned,
    IceServers,
    InvitationStatus,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    ParticipantReconnected,
    Pong,
    QueueRef,
    QueueStatus,
    QueueStatusItem,
    RecordStart,
    RecordStop,
    RtcCandidateRelay,
    RtcDescriptionRelay,
    Saved,
    SiteInfo,
    TerminalInfo,
    Welcome,
)

Inbound = (
    Hello | Ping | CallRequest | CallCancel | AgentStatus | CallAccept | CallDecline
    | CallHangup | AgentWrapupDone | CallInvite | CallTransfer | RtcDescription | RtcCandidate
    | ChatSend | SessionRate | SessionWrapup | RecordSegment | RecordManifest
    | ActionStart | ActionSign | ActionReject
    | CallHandoff
    | DocumentRequest
    | FormPresent | FormSign | FormDecline
)

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

__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "ActionEnterprise",
    "ActionReject",
    "ActionSign",
    "ActionStart",
    "ActionStep",
    "ActionUpdated",
    "AgentStatus",
    "AgentStatusChanged",
    "AgentWrapupDone",
    "AppointmentCode",
    "CallAccept",
    "CallCancel",
    "CallConnected",
    "CallDecline",
    "CallEnded",
    "CallHandedOff",
    "CallHandoff",
    "CallHandoffReady",
    "CallHangup",
    "CallInvite",
    "CallOffered",
    "CallPosition",
    "CallQueued",
    "CallRejected",
    "CallRequest",
    "CallRequeued",
    "CallTransfer",
    "CallWithdrawn",
    "ChatMessage",
    "ChatSend",
    "ChatText",
    "DocumentAdded",
    "DocumentInfo",
    "DocumentRequest",
    "DocumentRequestRelay",
    "Enterprise",
    "Error",
    "FormDecline",
    "FormDeclined",
    "FormPresent",
    "FormPresented",
    "FormSign",
    "FormSigned",
    "FrameKind",
    "Hello",
    "IceCandidate",
    "IceServers",
    "Inbound",
    "InvalidMessage",
    "InvitationStatus",
    "Message",
    "OfferNumber",
    "Outbound",
    "Participant",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantReconnected",
    "Ping",
    "Point",
    "Pong",
    "QueueRef",
    "QueueStatus",
    "QueueStatusItem",
    "RecordManifest",
    "RecordSegment",
    "RecordStart",
    "RecordStop",
    "RecordingManifest",
    "RtcCandidate",
    "RtcCandidateRelay",
    "RtcDescription",
    "RtcDescriptionRelay",
    "Saved",
    "Sdp",
    "SessionDescription",
    "SessionRate",
    "SessionWrapup",
    "ShortText",
    "Signature",
    "SiteInfo",
    "Stroke",
    "TerminalInfo",
    "Welcome",
    "decode",
    "encode",
    "frame_kind_of",
    "tag_of",
]
