"""The base of every protocol frame and the small structs frames share.

`signaling.messages` gathers the frames of both directions (`client_messages`,
`server_messages`) into the `Inbound` and `Outbound` unions and decodes them.
"""

from __future__ import annotations

import enum
from typing import Annotated, ClassVar, Literal

import msgspec

from signaling import limits as lim

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 64 * 1024
ShortText = lim.OptionalName
ChatText = lim.Text
Sdp = Annotated[str, msgspec.Meta(max_length=60_000)]


class FrameKind(enum.Enum):
    """What a server frame is, which decides where it goes among a connection's frames
    (`signaling/commit.py`). Every server frame declares its own (`frame_kind`): a new
    one cannot be left to a default."""

    REPLY = "reply"  # answers the connection's own message, no routing decision made it
    NOTICE = "notice"  # about the connection or the queues, not a call's routing
    CHAT = "chat"  # a chat line of a call (logged before it is sent)
    EVENT = "event"  # what routing decided, or a call's state, even in answer to a request


class Message(msgspec.Struct, tag_field="type", forbid_unknown_fields=False, kw_only=True):
    """Base of every frame: `type` is the tag."""

    frame_kind: ClassVar[FrameKind]  # server frames only; not a field


def frame_kind_of(cls: type[Message]) -> FrameKind:
    """The kind a server frame's class declares itself (not one inherited); TypeError if
    it declares none."""
    kind = vars(cls).get("frame_kind")
    if not isinstance(kind, FrameKind):
        raise TypeError(f"{cls.__name__} does not declare its frame_kind")
    return kind


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
