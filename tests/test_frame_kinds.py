"""Which server frames go straight and which keep their place behind a connection's numbered
events (`signaling/commit.py`): derived from the kind every server frame declares, so a
reply added later cannot be left waiting in line by a forgotten list."""

from __future__ import annotations

import typing

import pytest

from signaling import commit
from signaling import messages as m

SERVER_FRAMES = typing.get_args(m.Outbound)


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=m.tag_of)
def test_every_server_frame_declares_its_own_kind(frame: type[m.Message]) -> None:
    assert isinstance(vars(frame).get("frame_kind"), m.FrameKind), (
        f"{frame.__name__} must say what it is: frame_kind = FrameKind.REPLY / NOTICE / "
        "CHAT (straight) or EVENT (in line)")


def test_replies_notices_and_chat_go_straight_and_nothing_else() -> None:
    straight = {f for f in SERVER_FRAMES if m.frame_kind_of(f) is not m.FrameKind.EVENT}
    assert straight == commit.STRAIGHT
    replies = {f for f in SERVER_FRAMES if m.frame_kind_of(f) is m.FrameKind.REPLY}
    assert replies <= commit.STRAIGHT
    # what went straight before the kinds were declared still does, and only that
    assert {m.tag_of(f) for f in commit.STRAIGHT} == {
        "welcome", "ice.servers", "pong", "error", "saved", "queue.status", "chat.message"}


class LateReply(m.Message, tag="late.reply"):
    """A reply type added after the others."""

    frame_kind = m.FrameKind.REPLY
    answer: str


class Undeclared(m.Message, tag="undeclared"):
    answer: str


def test_a_new_reply_goes_straight_without_being_listed() -> None:
    assert LateReply in commit.straight_frames(m.Outbound | LateReply)


def test_a_new_frame_that_says_nothing_is_refused() -> None:
    with pytest.raises(TypeError, match="Undeclared does not declare its frame_kind"):
        commit.straight_frames(m.Outbound | Undeclared)


def test_a_kind_is_not_inherited() -> None:
    class Copy(m.Error, tag="error.copy"):
        pass

    with pytest.raises(TypeError):
        m.frame_kind_of(Copy)
