"""The day's checks where a visit ended before its reply could come: a form the log has
signed, a sampled call answered as the kiosk cancelled or the day closed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from bench.day_checks import (
    REESTABLISH_S,
    Findings,
    LedgerView,
    LogView,
    _named_gaps,
    _only_in_gaps,
    _told_late,
    check_calls,
    check_recordings,
)
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


def test_a_sampled_call_answered_after_its_cancel_is_not_judged_unrecorded(tmp_path: Path
                                                                            ) -> None:
    """The kiosk cancelled, the answer crossed it, the kiosk hung up at once: no talk, no
    media; a call that did talk with no segment is still unrecorded."""
    visits = [{"media": True, "answered": 2.0, "cancelled": 1.0, "call_id": "c_crossed"},
              {"media": True, "answered": 2.0, "cut": True, "call_id": "c_closing"},
              {"media": True, "answered": 2.0, "call_id": "c_talked"}]
    log = LogView(sessions={c: {"id": c} for c in ("c_crossed", "c_closing", "c_talked")},
                  answers=Counter(), actions={}, recordings={})
    found = Findings()
    check_recordings(LedgerView(visits=visits), log, tmp_path, found)
    assert (found.sampled, found.untalked, found.recorded) == (3, 2, 0)
    assert found.unrecorded == ["c_talked: 0 of 2 parties recorded (segments [])"]


def test_an_unrecorded_call_names_its_segments_closed_with_nothing_in_them(tmp_path: Path
                                                                        ) -> None:
    """The CI-size day's shape: a party's segment `complete` with no file (its answer was
    relayed after the call ended: no media came), said so, not left to be guessed."""
    segments = [{"id": "r1", "participant_id": "terminal:K1", "segment": 1,
                 "state": "complete", "recorder": "rec2", "sha256": None, "path": "x.webm"},
                {"id": "r2", "participant_id": "specialist:s1", "segment": 1,
                 "state": "recording", "recorder": "rec2", "sha256": None, "path": "y.webm"}]
    log = LogView(sessions={"c1": {"id": "s1"}}, answers=Counter(), actions={},
                  recordings={"s1": segments})
    found = Findings()
    check_recordings(LedgerView(visits=[{"media": True, "answered": 1.0, "call_id": "c1"}]),
                     log, tmp_path, found)
    assert found.unrecorded == ["c1: 0 of 2 parties recorded (segments ['speciali:1:recording"
                                "@rec2 -', 'terminal:1:complete@rec2 empty'])"]


def test_a_booked_request_that_failed_after_it_was_logged_is_not_a_mismatch() -> None:
    """The goal-size day's Redis restart: a visitor's coded request was logged, then failed
    (`error internal`, the log has it `rejected`); the visitor walked in and was refused
    as closed, a second `rejected` session of the same visit. A session no visitor asked
    for is still a mismatch."""
    visits = [{"terminal": "K1", "queue": "tax", "appointment_refused": "internal",
               "outcome": "rejected"},
              {"terminal": "K2", "queue": "tax", "appointment_refused": "appointment_unknown",
               "outcome": "rejected"}]
    rows = {"c_coded": "K1", "c_walk_in": "K1", "c_k2": "K2", "c_k2_extra": "K2"}
    log = LogView(sessions={c: {"id": c, "terminal_id": t, "state": "rejected"}
                            for c, t in rows.items()},
                  answers=Counter(), actions={}, recordings={})
    found = check_calls(LedgerView(visits=visits), log)
    assert found.lost == [] and found.doubled == []
    assert found.mismatches == ["c_k2_extra: in the log (rejected), not in the ledger"]


def test_a_request_sent_again_may_leave_a_closed_session_of_its_earlier_send() -> None:
    """A kiosk's request lost with its socket is sent again (`resent`): the earlier send's
    session, refused by the router as the terminal's second call or interrupted with its
    node, is closed and unanswered; one still waiting or answered is not excused."""
    visits = [{"terminal": "K1", "queue": "tax", "call_id": "c_served", "resent": 1,
               "outcome": "served", "answered": 1.0, "specialists": ["specialist:s1"]},
              {"terminal": "K2", "queue": "tax", "call_id": "c_k2", "resent": 2,
               "outcome": "served", "answered": 1.0, "specialists": ["specialist:s1"]}]
    answered = {"state": "ended", "answered_at": 1.0, "specialist_id": "s1"}
    log = LogView(sessions={
        "c_served": {"id": "c_served", "terminal_id": "K1", **answered},
        "c_first": {"id": "c_first", "terminal_id": "K1", "state": "rejected",
                    "answered_at": None},
        "c_k2": {"id": "c_k2", "terminal_id": "K2", **answered},
        "c_k2_waiting": {"id": "c_k2_waiting", "terminal_id": "K2", "state": "queued",
                         "answered_at": None},
        "c_k2_interrupted": {"id": "c_k2_interrupted", "terminal_id": "K2",
                             "state": "interrupted", "answered_at": None}},
        answers=Counter(), actions={}, recordings={})
    found = check_calls(LedgerView(visits=visits), log)
    assert found.lost == [] and found.doubled == []
    assert found.mismatches == ["c_k2_waiting: in the log (queued), not in the ledger"]


def test_a_closed_refusal_sent_again_may_be_logged_twice() -> None:
    """A kiosk whose socket dropped before its `call.rejected` (closed) came sends the
    request again: refused again, the log has two for the one refusal the kiosk saw (the
    goal-size day's "log has 203, the kiosks saw 202"). A third is still a mismatch."""
    for logged, mismatches in ((2, []), (3, ["tax: the log has 3 requests rejected closed, "
                                             "the kiosks saw 1"])):
        out = ServiceFigures()
        out.add("tax", "refused closed")
        out.resent_closed["tax"] += 1
        log = ServiceLog(bookings={}, handed_off=set(), forms={}, queue_of={},
                         closed=Counter(tax=logged))
        _log_side([], set(), log, {}, out)
        assert out.mismatches == mismatches


def _segment(n: int, party: str, seg: int, state: str, created: float, ended: float,
             ) -> dict[str, object]:
    at = dt.datetime(2026, 12, 7, 3, 51, tzinfo=dt.UTC)
    return {"id": f"r{n}", "participant_id": party, "segment": seg, "state": state,
            "recorder": "rec1" if state == "interrupted" else "rec2", "sha256": None,
            "path": f"r{n}.webm", "created_at": at + dt.timedelta(seconds=created),
            "ended_at": at + dt.timedelta(seconds=ended)}


def test_a_call_whose_media_all_fell_in_a_named_gap_is_counted_apart(tmp_path: Path) -> None:
    """The faulted day's shape (`c_0542fcf4fbc5dbfa`): answered 2.6 s before its recorder
    was killed (nothing written yet: the log says `interrupted`, recorder lost), the
    specialist's segment on the next recorder closed empty 0.9 s later as the call ended,
    the kiosk's never made. A segment left empty longer than `REESTABLISH_S` after the
    hand-over is still unrecorded."""
    in_gap = [_segment(1, "specialist:sp0018", 1, "interrupted", 1.5, 4.2),
              _segment(2, "specialist:sp0018", 2, "complete", 4.8, 5.7),
              _segment(3, "terminal:K00175", 1, "interrupted", 1.5, 4.2)]
    too_long = [_segment(4, "specialist:s1", 1, "interrupted", 1.5, 4.2),
                _segment(5, "specialist:s1", 2, "complete", 4.8, 30.0),
                _segment(6, "terminal:K1", 1, "interrupted", 1.5, 4.2)]
    never_cut = [_segment(7, "specialist:s2", 1, "complete", 1.5, 2.0),
                 _segment(8, "terminal:K2", 1, "complete", 1.5, 2.0)]
    log = LogView(sessions={"c1": {"id": "s1"}, "c2": {"id": "s2"}, "c3": {"id": "s3"}},
                  answers=Counter(), actions={},
                  recordings={"s1": in_gap, "s2": too_long, "s3": never_cut})
    visits = [{"media": True, "answered": 1.0, "call_id": c} for c in ("c1", "c2", "c3")]
    found = Findings()
    check_recordings(LedgerView(visits=visits), log, tmp_path, found)
    assert [f.split(":")[0] for f in found.in_gap] == ["c1"]
    assert [f.split(":")[0] for f in found.unrecorded] == ["c2", "c3"]
    assert found.gaps == 4 and found.failed


def test_a_call_whose_recorder_was_lost_before_it_wrote_anything_is_a_gap_if_named(
        tmp_path: Path) -> None:
    """Goal-size day 3's `c_e0af02470ab89a8b`: given rec1 as rec1's node was killed, no
    segment ever written, the call over before the takeover handed it on. A gap only when
    the log names it (`recording_interrupted` after rec1's `recording_started`), and only
    if no later recorder of the session missed the parties."""
    log = LogView(sessions={c: {"id": "s" + c[1:]} for c in ("c1", "c2", "c3", "c4")},
                  answers=Counter(), actions={},
                  recordings={"s4": [_segment(1, "specialist:s4", 2, "complete", 4.8, 5.7)]},
                  started={"s1": 1, "s2": 1, "s3": 2, "s4": 2},
                  named={"s1": {1}, "s3": {1}, "s4": {1}})
    visits = [{"media": True, "answered": 1.0, "call_id": c} for c in ("c1", "c2", "c3", "c4")]
    found = Findings()
    check_recordings(LedgerView(visits=visits), log, tmp_path, found)
    assert [f.split(":")[0] for f in found.in_gap] == ["c1"]
    assert [f.split(":")[0] for f in found.unrecorded] == ["c2", "c3", "c4"]


def test_a_call_over_within_seconds_of_its_next_recorder_being_told_is_a_gap(
        tmp_path: Path) -> None:
    """This stop's goal-size day, `c_774b4734bb986282`: rec1 killed 0.2 s after it was
    given the call (named interrupted), rec2 told 4.7 s later, the call over 1.5 s after
    that: neither party had a segment. A gap when the call ended within `REESTABLISH_S` of
    rec2 being told (`_told_late`), unrecorded when later."""
    at = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)

    class Event:
        def __init__(self, session: str, segment: int, seconds: float) -> None:
            self.session_id, self.type = session, "recording_started"
            self.data = {"recorder": "recorder:rec2", "segment": segment}
            self.ts = at + dt.timedelta(seconds=seconds)

    rows = [{"id": sid, "ended_at": at + dt.timedelta(seconds=6.2)}
            for sid in ("s1", "s2", "s3")]
    late = _told_late([Event("s1", 2, 4.7), Event("s2", 2, 0.5), Event("s3", 1, 4.7)], rows)
    assert late == {"s1"}  # s2 told 5.7 s before the end; s3's recorder was its first
    log = LogView(sessions={"c1": {"id": "s1"}, "c2": {"id": "s2"}}, answers=Counter(),
                  actions={}, recordings={}, started={"s1": 2, "s2": 2},
                  named={"s1": {1}, "s2": {1}}, told_late=late)
    visits = [{"media": True, "answered": 1.0, "call_id": c} for c in ("c1", "c2")]
    found = Findings()
    check_recordings(LedgerView(visits=visits), log, tmp_path, found)
    assert [f.split(":")[0] for f in found.in_gap] == ["c1"]
    assert [f.split(":")[0] for f in found.unrecorded] == ["c2"]


def test_the_log_names_the_segment_of_the_recorder_it_says_was_lost() -> None:
    class Event:
        def __init__(self, session: str, kind: str, recorder: str, segment: int = 0) -> None:
            self.session_id, self.type = session, kind  # interrupted: as logged before
            self.data = {"recorder": recorder} | ({"segment": segment} if segment else {})

    started, named = _named_gaps([
        Event("s1", "recording_started", "recorder:rec1", 1),
        Event("s1", "recording_interrupted", "recorder:rec1"),
        Event("s1", "recording_started", "recorder:rec2", 2),
        Event("s2", "recording_started", "recorder:rec2", 1),
        Event("s2", "recording_interrupted", "recorder:rec1")])
    assert started == {"s1": 2, "s2": 1} and named == {"s1": {1}}


def test_a_hand_over_that_names_its_segment_names_that_one() -> None:
    """The CI day's `c_bb9856bae91f9519`: rec1's socket came back; a party's resume gave
    the call segment 2 on rec1 before the hello's hand-over came to it, which then named
    segment 1 cut (`recording_interrupted.segment`), after segment 2's start. Its parties'
    segments on rec1 then lived 1-2 s, empty, before the call ended: in the gap."""
    class Event:
        def __init__(self, kind: str, segment: int | None) -> None:
            self.session_id, self.type = "s1", kind
            self.data = {"recorder": "recorder:rec1", "segment": segment}

    started, named = _named_gaps([Event("recording_started", 1),
                                  Event("recording_started", 2),
                                  Event("recording_interrupted", 1)])
    assert started == {"s1": 2} and named == {"s1": {1}}
    empty = [_segment(1, "specialist:s1", 2, "complete", 9.94, 11.02),
             _segment(2, "terminal:K1", 2, "complete", 10.62, 12.44),
             _segment(3, "specialist:s1", 3, "complete", 11.85, 13.25),
             _segment(4, "terminal:K1", 3, "complete", 12.95, 13.41)]
    assert _only_in_gaps(empty, set(), named["s1"], 2)
    assert not _only_in_gaps(empty, set(), {2}, 2)  # as the log's segment 2 read before


def test_a_segment_after_a_named_gap_that_lived_too_short_for_media_is_in_the_gap() -> None:
    """The CI day's `c_502e3d806e288e7d` (load 12): rec1 killed, the kiosk's segment on
    rec2 lived 0.3 s with one video frame before the call ended. Such a segment, empty or
    not, is part of the named gap; one that lived longer than `REESTABLISH_S` is not."""
    def after_gap(lived_s: float) -> list[dict[str, object]]:
        short = _segment(2, "terminal:K1", 2, "complete", 9.4, 9.4 + lived_s)
        short["sha256"] = "a" * 64  # a file with a frame in it
        return [_segment(1, "terminal:K1", 1, "interrupted", 2.3, 9.1), short,
                _segment(3, "specialist:s1", 1, "complete", 1.2, 9.7)]

    assert _only_in_gaps(after_gap(0.3), {"specialist:s1"}, {1}, 2)
    assert not _only_in_gaps(after_gap(REESTABLISH_S + 1), {"specialist:s1"}, {1}, 2)
