"""Generate docs/protocol.md from the message schema: `python -m signaling.protocol_doc`."""

from __future__ import annotations

import sys
import typing

import msgspec.inspect as mi

from . import messages as m

INTRO = """# Signalling protocol v1 (`GET /ws`)

Generated from `signaling/messages.py` by `python -m signaling.protocol_doc`; do not edit by hand.

JSON text frames, one object each, with a `"type"`. Frames over 64 KiB are answered with
`error`; over 256 KiB the socket is closed (1009). The first frame must be `hello` within
`hello_timeout_s` (10 s), else `error {code: "unauthorized"}` and close 4401. Any invalid
message gets `error {code, message}` naming what was wrong; the connection stays usable and
nothing changes state. A refusal of a valid message also names it: `refused` (its type),
`call_id`, and a `call.request`'s `request_id`. Connections silent for `idle_timeout_s`
(30 s) are dropped: send `ping` every 10 s.

Close codes: 4401 unauthorized, 4403 forbidden (account may not use signalling), 4408 idle,
4409 replaced by a newer connection of the same terminal/specialist, 4410 terminal revoked,
4411 logged out, 4412 login expired, 4413 password changed, 4414 account disabled (log in
again; 4411-4414 close a specialist's socket on whichever node holds it), 1008 message-rate
abuse, 1001 server shutdown, 1012 node draining, moving the client to a less loaded node, or
taken for dead by the others (reconnect at once, with the resume token; meanwhile such a
node refuses steps with `error {code: "fenced"}`). An address over
`[limits] ws_per_address` open or `unauthenticated_per_address` not-yet-`hello` connections
is refused with HTTP 429 before the upgrade.

Participant ids are `terminal:<id>`, `specialist:<username>`, `recorder:<name>`,
`visitor:<id>`; `rtc.*` messages are relayed only between participants of the same call,
with `from` added.

Phone hand-off: a terminal's waiting call goes over to a phone with `call.handoff`; the
phone opens the URL of `call.handoff_ready` (`/m/<ticket>`; `GET /m/<ticket>/qr.svg` is its
QR code) and says `hello {token: <ticket>}`. The first such hello takes the call over in its
place in the queue (`welcome {role: "visitor"}`, the terminal gets `call.handed_off` and may
ask for a new call); once that phone has its `welcome`, a later one must carry its `resume`
token, else `error {code: "ticket_used"}` and close 4401 (a phone that took the call over but
never got its `welcome` may open the ticket again); a ticket whose call a specialist
answered at the kiosk first: `ticket_answered` (the visitor goes back to the kiosk); a
ticket past its 10 minutes, or whose call is over: `ticket_expired`. A visitor may act on
that one call only
(`call.cancel`, `call.hangup`, `rtc.*`, `chat.send`, `session.rate`).
"""


def _type_name(t: mi.Type) -> str:
    if isinstance(t, mi.UnionType):
        return " or ".join(_type_name(x) for x in t.types)
    if isinstance(t, mi.NoneType):
        return "null"
    if isinstance(t, mi.StrType):
        return "string"
    if isinstance(t, mi.IntType):
        return "integer"
    if isinstance(t, mi.FloatType):
        return "number"
    if isinstance(t, mi.BoolType):
        return "boolean"
    if isinstance(t, mi.LiteralType):
        return " | ".join(f'"{v}"' for v in t.values)
    if isinstance(t, mi.ListType):
        return f"[{_type_name(t.item_type)}]"
    if isinstance(t, mi.DictType):
        return "object"
    if isinstance(t, mi.StructType):
        return "{" + ", ".join(f.encode_name for f in t.fields) + "}"
    return type(t).__name__.removesuffix("Type").lower()


def _section(title: str, union: typing.Any) -> list[str]:
    lines = [f"\n## {title}\n"]
    for cls in typing.get_args(union):
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        doc = (cls.__doc__ or "").strip().splitlines()
        lines.append(f"### `{m.tag_of(cls)}`\n")
        if doc and not doc[0].startswith(cls.__name__ + "("):
            paragraph = doc[: doc.index("")] if "" in doc else doc
            lines.append(" ".join(line.strip() for line in paragraph) + "\n")
        fields = [f for f in info.fields if f.encode_name != "type"]
        if not fields:
            lines.append("No fields.\n")
            continue
        lines.append("| field | type | required |\n|---|---|---|")
        for f in fields:
            lines.append(f"| `{f.encode_name}` | {_type_name(f.type)} | "
                         f"{'yes' if f.required else 'no'} |")
        lines.append("")
    return lines


def render() -> str:
    out = [INTRO]
    out += _section("Client to server", m.Inbound)
    out += _section("Server to client", m.Outbound)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())

