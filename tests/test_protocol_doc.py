"""docs/protocol.md is generated from the schema; it must not drift from it."""

from __future__ import annotations

from pathlib import Path

from signaling import messages as m
from signaling.protocol_doc import render

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def test_protocol_reference_is_up_to_date() -> None:
    assert DOC.read_text() == render(), "run: python -m signaling.protocol_doc > docs/protocol.md"


def test_every_message_type_is_documented() -> None:
    text = DOC.read_text()
    for union in (m.Inbound, m.Outbound):
        for cls in union.__args__:
            assert f"### `{m.tag_of(cls)}`" in text
