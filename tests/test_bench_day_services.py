"""The day's service checks: a form the log has signed is a mismatch unless a visitor saw
it signed, or the closing time cut that visit short before the reply could come."""

from __future__ import annotations

from collections import Counter

from bench.day_services import ServiceFigures, ServiceLog, _log_side


def _log(*form_ids: str) -> ServiceLog:
    return ServiceLog(bookings={}, handed_off=set(),
                      forms={f: {"state": "signed", "sha256": "x"} for f in form_ids},
                      queue_of={}, closed=Counter())


def test_a_form_signed_as_the_day_closed_is_not_a_mismatch() -> None:
    visits = [{"form_id": "f_cut", "cut": True, "call_id": "c1"},
              {"form_id": "f_seen", "form_sha256": "x", "call_id": "c2"},
              {"form_id": "f_lost", "call_id": "c3"}]
    out = ServiceFigures()
    _log_side(visits, set(), _log("f_cut", "f_seen", "f_lost"), {}, out)
    assert out.mismatches == ["form f_lost: signed in the log, no visitor saw it"]
