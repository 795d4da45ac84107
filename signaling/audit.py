"""Hash chain of the append-only audit log of joint actions (no I/O).

Each entry carries the SHA-256 of its canonical form chained to the previous
entry's hash, so editing any stored field, or deleting a row, breaks the chain
at that entry. Storage writes ``next_entry(...)`` results and ``vwin audit
verify`` feeds the rows, ordered by ``seq``, to ``verify_chain``.

Deleting the newest entries leaves a shorter chain that is still intact; only
an anchor kept elsewhere (the last ``seq`` exported or printed) reveals that,
through ``verify_chain(..., expected_last=...)``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import msgspec

#: Hash that the first entry (seq 1) is chained to.
GENESIS = "0" * 64
FIRST_SEQ = 1

ProblemKind = Literal["missing", "altered", "out_of_order"]


class AuditEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One stored event of a joint action; ``hash`` chains it to the entry before."""

    seq: int
    ts: dt.datetime
    actor: str
    action_id: str
    event: str
    data: dict[str, Any]
    hash: str


class ChainProblem(msgspec.Struct, frozen=True):
    """The first place the chain breaks: ``seq`` is the entry altered or missing."""

    seq: int
    kind: ProblemKind
    message: str


def _utc_iso(ts: dt.datetime) -> str:
    """ISO-8601 UTC with microseconds, so equal instants always serialize alike.

    A naive datetime is read as UTC: that is how SQLite hands back a stored
    UTC timestamp. ``next_entry`` refuses naive datetimes when writing.
    """
    if ts.tzinfo is not None and ts.utcoffset() is not None:
        ts = ts.astimezone(dt.UTC)
    return ts.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _check_json(value: Any, where: str) -> None:
    """Allow only values that survive any JSON/JSONB column unchanged."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        raise ValueError(f"{where} is a float; store it as a string so it round-trips exactly")
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{where}[{index}]")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a non-string key {key!r}")
            _check_json(item, f"{where}.{key}")
        return
    raise ValueError(f"{where} is a {type(value).__name__}, not a JSON value")


def canonical(entry: AuditEntry) -> bytes:
    """The bytes that are hashed: every field but ``hash``, as sorted-keys JSON."""
    _check_json(entry.data, "data")
    body = {
        "seq": entry.seq,
        "ts": _utc_iso(entry.ts),
        "actor": entry.actor,
        "action_id": entry.action_id,
        "event": entry.event,
        "data": entry.data,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def entry_hash(prev_hash: str, entry: AuditEntry) -> str:
    """SHA-256 hex of the previous hash, a newline, and the entry's canonical form."""
    digest = hashlib.sha256(prev_hash.encode("utf-8"))
    digest.update(b"\n")
    digest.update(canonical(entry))
    return digest.hexdigest()


def next_entry(
    prev: AuditEntry | None,
    *,
    ts: dt.datetime,
    actor: str,
    action_id: str,
    event: str,
    data: Mapping[str, Any],
) -> AuditEntry:
    """The entry to append after ``prev`` (None for the first), hash included."""
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError(f"audit timestamp {ts.isoformat()} has no time zone")
    draft = AuditEntry(
        seq=FIRST_SEQ if prev is None else prev.seq + 1,
        ts=ts.astimezone(dt.UTC),
        actor=actor,
        action_id=action_id,
        event=event,
        data=dict(data),
        hash="",
    )
    prev_hash = GENESIS if prev is None else prev.hash
    return msgspec.structs.replace(draft, hash=entry_hash(prev_hash, draft))


def verify_chain(
    entries: Iterable[AuditEntry], *, expected_last: int | None = None
) -> ChainProblem | None:
    """Walk entries in ``seq`` order; return the first problem, or None when intact.

    ``expected_last`` is an anchor kept outside the log (the last seq known to
    exist); without it, deleting the newest entries cannot be detected.
    """
    prev_hash = GENESIS
    expected = FIRST_SEQ
    for entry in entries:
        if entry.seq > expected:
            after = "the start of the log" if expected == FIRST_SEQ else f"entry {expected - 1}"
            return ChainProblem(
                expected,
                "missing",
                f"entry {expected} is missing: entry {entry.seq} follows {after}",
            )
        if entry.seq < expected:
            return ChainProblem(
                expected,
                "out_of_order",
                f"entry {expected} is missing or altered: found seq {entry.seq} in its place",
            )
        try:
            computed = entry_hash(prev_hash, entry)
        except ValueError as exc:
            return ChainProblem(entry.seq, "altered", f"entry {entry.seq} was altered: {exc}")
        if computed != entry.hash:
            return ChainProblem(
                entry.seq,
                "altered",
                f"entry {entry.seq} was altered: its hash does not match its contents",
            )
        prev_hash = entry.hash
        expected += 1
    if expected_last is not None and expected <= expected_last:
        return ChainProblem(
            expected,
            "missing",
            f"entries {expected} to {expected_last} are missing from the end of the log",
        )
    return None
