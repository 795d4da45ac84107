"""The base of every protocol frame and the small structs frames share.

`signaling.messages` gathers the frames of both directions (`client_messages`,
`server_messages`) into the `Inbound` and `Outbound` unions and decodes them.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from signaling import limits as lim

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
