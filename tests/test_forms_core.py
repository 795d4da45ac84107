"""The form rules of the I/O-free core: who signs, and how large a signature may be."""

from __future__ import annotations

import json

import pytest

from signaling import limits as lim
from signaling import messages as m
from signaling.errors import Refused
from signaling.forms import check_signature, signers_of
from signaling.model import Call


def _sign(strokes: list[list[list[float]]], width: int = 300, height: int = 100) -> m.Inbound:
    return m.decode(json.dumps({"type": "form.sign", "form_id": "f_1", "signature": {
        "width": width, "height": height, "strokes": strokes}}))


def test_a_signature_within_its_bounds_passes() -> None:
    msg = _sign([[[0, 0], [300, 100]], [[150.5, 50.25]]])
    assert isinstance(msg, m.FormSign)
    check_signature(msg.signature)


@pytest.mark.parametrize("signature", [
    {"width": 0, "height": 100, "strokes": [[[1, 1]]]},
    {"width": lim.SIGNATURE_SIZE_MAX + 1, "height": 100, "strokes": [[[1, 1]]]},
    {"width": 300, "height": 100, "strokes": []},
    {"width": 300, "height": 100, "strokes": [[]]},
    {"width": 300, "height": 100, "strokes": [[[-1, 1]]]},
    {"width": 300, "height": 100, "strokes": [[[1, 1, 1]]]},
    {"width": 300, "height": 100, "strokes": [[[1, 1]]] * (lim.SIGNATURE_STROKES_MAX + 1)},
    {"width": 300, "height": 100, "strokes": [[[1, 1]] * (lim.SIGNATURE_POINTS_MAX + 1)]},
    {"width": 300, "height": 100, "strokes": [[[1, 1]]], "colour": "red"},
])
def test_the_decoder_refuses_a_malformed_or_oversized_signature(signature: dict[str, object]
                                                                ) -> None:
    with pytest.raises(m.InvalidMessage):
        m.decode(json.dumps({"type": "form.sign", "form_id": "f_1", "signature": signature}))


def test_the_step_refuses_too_many_points_in_all_and_points_off_the_pad() -> None:
    many = _sign([[[1, 1]] * 1000] * 5)
    assert isinstance(many, m.FormSign)
    with pytest.raises(Refused) as too_many:
        check_signature(many.signature)
    assert too_many.value.code == "signature_too_large"
    outside = _sign([[[10, 10], [10, 101]]])
    assert isinstance(outside, m.FormSign)
    with pytest.raises(Refused) as off_pad:
        check_signature(outside.signature)
    assert off_pad.value.code == "invalid_signature"


def test_the_caller_signs_the_terminal_or_the_phone_that_took_the_call_over() -> None:
    call = Call(id="c1", session_id="s1", queue="tax", terminal_id="T1", enqueued_at=0.0,
                agents=["alice"])
    assert signers_of(call) == {"terminal:T1"}
    call.visitor = "p1"  # handed off: the kiosk serves its next visitor and signs nothing
    assert signers_of(call) == {"visitor:p1"}
