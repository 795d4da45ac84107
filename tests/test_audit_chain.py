"""Audit hash chain: any edit or deletion is found and the entry is named."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.audit import (
    GENESIS,
    AuditEntry,
    canonical,
    entry_hash,
    next_entry,
    verify_chain,
)

START = dt.datetime(2026, 3, 10, 1, 30, tzinfo=dt.UTC)

json_scalar = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=8)
json_data = st.dictionaries(
    st.text(max_size=6),
    json_scalar | st.lists(json_scalar, max_size=3),
    max_size=3,
)


@st.composite
def chains(draw: st.DrawFn) -> list[AuditEntry]:
    """A valid chain of 1-8 entries written through ``next_entry``."""
    entries: list[AuditEntry] = []
    for _ in range(draw(st.integers(1, 8))):
        entries.append(
            next_entry(
                entries[-1] if entries else None,
                ts=START + dt.timedelta(microseconds=draw(st.integers(0, 10**12))),
                actor=draw(st.sampled_from(["spec-tax-1", "spec-reg-2", "manager"])),
                action_id=draw(st.sampled_from(["a1", "a2"])),
                event=draw(st.sampled_from(["started", "step_signed", "completed"])),
                data=draw(json_data),
            )
        )
    return entries


def _changed(field: str, value: Any, delta: int) -> Any:
    """A different value of the same field, as a tampering UPDATE would write."""
    if field == "seq":
        return value + (delta if delta % 2 else -delta)
    if field == "ts":
        return value + dt.timedelta(microseconds=delta if delta % 2 else -delta)
    if field == "data":
        return {**value, "tampered": delta}
    return value + "x" if delta % 2 else value[:-1]


FIELDS = ["seq", "ts", "actor", "action_id", "event", "data", "hash"]


def test_fresh_chain_verifies_and_starts_at_genesis() -> None:
    first = next_entry(
        None, ts=START, actor="spec-reg-2", action_id="a1", event="started", data={"uscc": "x"}
    )
    second = next_entry(
        first, ts=START, actor="spec-tax-1", action_id="a1", event="step_signed", data={}
    )
    assert (first.seq, second.seq) == (1, 2)
    assert first.hash == entry_hash(GENESIS, first)
    assert second.hash == entry_hash(first.hash, second)
    assert len(second.hash) == 64
    assert verify_chain([first, second]) is None
    assert verify_chain([]) is None


def test_canonical_form_is_sorted_keys_json_with_utc_time() -> None:
    shanghai = dt.timezone(dt.timedelta(hours=8))
    entry = next_entry(
        None,
        ts=dt.datetime(2026, 3, 10, 9, 30, tzinfo=shanghai),
        actor="spec-reg-2",
        action_id="a1",
        event="started",
        data={"b": 1, "a": "营业执照"},
    )
    assert (
        canonical(entry)
        == (
            '{"action_id":"a1","actor":"spec-reg-2","data":{"a":"营业执照","b":1},'
            '"event":"started","seq":1,"ts":"2026-03-10T01:30:00.000000Z"}'
        ).encode()
    )
    # A naive timestamp read back from SQLite is the same UTC instant.
    naive = msgspec.structs.replace(entry, ts=entry.ts.replace(tzinfo=None))
    assert verify_chain([naive]) is None


def test_bad_entries_are_refused_when_written() -> None:
    with pytest.raises(ValueError, match="no time zone"):
        next_entry(None, ts=dt.datetime(2026, 1, 5), actor="a", action_id="b", event="c", data={})
    with pytest.raises(ValueError, match=r"data\.amount is a float"):
        next_entry(None, ts=START, actor="a", action_id="b", event="c", data={"amount": 1.5})
    with pytest.raises(ValueError, match=r"data\.when is a datetime"):
        next_entry(None, ts=START, actor="a", action_id="b", event="c", data={"when": START})


@settings(max_examples=200, deadline=None)
@given(chains(), st.data())
def test_any_edit_of_any_field_is_detected_at_that_entry(
    chain: list[AuditEntry], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(FIELDS))
    target = chain[index]
    value = getattr(target, field)
    tampered = list(chain)
    new_value = _changed(field, value, data.draw(st.integers(1, 5)))
    tampered[index] = msgspec.structs.replace(target, **{field: new_value})
    problem = verify_chain(tampered)
    assert problem is not None
    assert problem.seq == target.seq
    assert str(target.seq) in problem.message


@settings(max_examples=200, deadline=None)
@given(chains(), st.data())
def test_any_deletion_is_detected_and_names_the_missing_entry(
    chain: list[AuditEntry], data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(chain) - 1))
    removed = chain[index]
    remaining = chain[:index] + chain[index + 1 :]
    problem = verify_chain(remaining, expected_last=chain[-1].seq)
    assert problem is not None
    assert problem.kind == "missing"
    assert problem.seq == removed.seq
    assert f"entry {removed.seq}" in problem.message or f"entries {removed.seq}" in problem.message


def test_deleting_inside_the_chain_needs_no_anchor() -> None:
    chain = _linear_chain(5)
    problem = verify_chain(chain[:2] + chain[3:])
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, "missing")
    assert problem.message == "entry 3 is missing: entry 4 follows entry 2"


def test_rehashing_an_edited_entry_is_caught_at_the_next_one() -> None:
    chain = _linear_chain(4)
    forged = msgspec.structs.replace(chain[1], actor="intruder")
    forged = msgspec.structs.replace(forged, hash=entry_hash(chain[0].hash, forged))
    problem = verify_chain([chain[0], forged, *chain[2:]])
    assert problem is not None
    assert (problem.seq, problem.kind) == (3, "altered")


def _linear_chain(n: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    for i in range(n):
        entries.append(
            next_entry(
                entries[-1] if entries else None,
                ts=START + dt.timedelta(minutes=i),
                actor="spec-reg-2",
                action_id="a1",
                event="step_signed",
                data={"step": f"s{i}"},
            )
        )
    return entries
