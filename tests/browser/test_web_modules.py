"""The pages' ES modules keep their shared parts in one place (no browser needed).

The message type names live once, in `signaling.js`'s MSG, and match the
protocol's tags; pages send and listen through MSG; `$`, `el` and `svg` come
from `dom.js` only.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

from signaling import messages

JS = Path(__file__).resolve().parents[2] / "web" / "static" / "js"
RECORDER_ONLY = ("record.",)  # recorders are Python processes, not pages


def protocol_tags() -> set[str]:
    tags: set[str] = set()
    for union in (messages.Inbound, messages.Outbound):
        for struct in typing.get_args(union):
            tag = msgspec.inspect.type_info(struct).tag  # type: ignore[attr-defined]
            if not tag.startswith(RECORDER_ONLY):
                tags.add(tag)
    return tags


def msg_constants() -> dict[str, str]:
    source = (JS / "signaling.js").read_text()
    block = re.search(r"export const MSG = Object\.freeze\(\{(.*?)\}\);", source, re.S)
    assert block is not None, "signaling.js exports no MSG"
    return dict(re.findall(r'(\w+): "([^"]+)"', block.group(1)))


def test_msg_names_every_protocol_message_type_once() -> None:
    constants = msg_constants()
    assert sorted(constants.values()) == sorted(protocol_tags())
    for name, tag in constants.items():
        assert name == re.sub(r"[._]", "_", tag).upper()


def test_pages_send_and_listen_through_msg() -> None:
    tags = protocol_tags()
    literal = re.compile(r'\b(?:on|send)\("([a-z_]+(?:\.[a-z_]+)*)"')
    offenders = [
        f"{path.name}: {tag}"
        for path in sorted(JS.glob("*.js"))
        for tag in literal.findall(path.read_text())
        if tag in tags
    ]
    assert offenders == []


def test_dom_helpers_have_one_home() -> None:
    copies = re.compile(
        r"const \$ = |document\.getElementById\(|function (?:el|svg)\(|createElementNS\("
    )
    offenders = [
        path.name
        for path in sorted(JS.glob("*.js"))
        if path.name != "dom.js" and copies.search(path.read_text())
    ]
    assert offenders == []
