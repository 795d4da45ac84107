"""Joint actions: one business action signed off step by step by several departments.

The domain's example is a sole-proprietor deregistration: market regulation
cancels the business licence and the tax office confirms tax clearance, in one
remote session. Action types are configuration (``configs/actions.toml``); this
module holds the state machine ``open -> completed | rejected`` and the rules
that refuse a signature (wrong department, signed twice, action closed). Every
change returns the ``ActionEvent`` the server writes to the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from signaling.errors import Refused
from signaling.uscc import uscc_error

logger = logging.getLogger(__name__)

ActionState = Literal["open", "completed", "rejected"]
ErrorCode = Literal[
    "unknown_action",
    "unknown_step",
    "wrong_department",
    "already_signed",
    "not_open",
    "invalid_enterprise",
    "missing_field",
    "unknown_field",
    "reason_required",
]

#: Ids travel in the protocol, URLs and the audit log: keep them plain.
_ID = re.compile(r"[a-z][a-z0-9_]*\Z")


class ActionError(Refused):
    """A refused action request; ``code`` is stable for clients, ``message`` for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(code, message)
        self.code: ErrorCode = code


class StepType(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One sign-off of an action type, reserved to one department."""

    id: str
    department: str
    name_zh: str
    name_en: str


class ActionType(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A configured kind of joint action."""

    id: str
    name_zh: str
    name_en: str
    steps: list[StepType]
    fields: list[str] = []
    form: str = ""  # a template `configs/forms/<form>.html` the visitor signs; "" for none

    @property
    def departments(self) -> list[str]:
        """Departments that must sign, in step order, each once."""
        return list(dict.fromkeys(step.department for step in self.steps))


class _ActionsFile(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    actions: list[ActionType]


class ActionConfigError(ValueError):
    """``configs/actions.toml`` cannot be used; the message names file and rule."""


def load_action_types(path: Path | str) -> dict[str, ActionType]:
    """Read the action types from TOML, refusing unknown keys and duplicate ids."""
    source = Path(path)
    try:
        parsed = msgspec.toml.decode(source.read_bytes(), type=_ActionsFile)
    except msgspec.ValidationError as exc:
        raise ActionConfigError(f"{source}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise ActionConfigError(f"{source}: not valid TOML: {exc}") from exc
    types: dict[str, ActionType] = {}
    for action in parsed.actions:
        where = f"{source}: action {action.id!r}"
        names = [action.id, *(s.id for s in action.steps), *(s.department for s in action.steps)]
        for name in [*names, *action.fields, *([action.form] if action.form else [])]:
            if not _ID.match(name):
                raise ActionConfigError(f"{where}: {name!r} is not a lower-case identifier")
        if action.id in types:
            raise ActionConfigError(f"{where} is defined twice")
        if not action.steps:
            raise ActionConfigError(f"{where} has no steps")
        for label, ids in (("step", [s.id for s in action.steps]), ("field", action.fields)):
            duplicate = next((i for i in ids if ids.count(i) > 1), None)
            if duplicate is not None:
                raise ActionConfigError(f"{where}: {label} {duplicate!r} is listed twice")
        types[action.id] = action
    return types


def get_action_type(types: Mapping[str, ActionType], action_id: str) -> ActionType:
    """Look up a configured action type, refusing unknown ones by name."""
    try:
        return types[action_id]
    except KeyError:
        known = ", ".join(sorted(types)) or "none"
        raise ActionError("unknown_action", f"no action {action_id!r}; known: {known}") from None


class Enterprise(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The market entity the action is for, identified by its USCC."""

    name: str
    uscc: str


class StepState(msgspec.Struct, frozen=True):
    """A step of a running action: unsigned until ``signed_by`` is set."""

    id: str
    department: str
    signed_by: str | None = None
    signed_at: dt.datetime | None = None


class ActionRecord(msgspec.Struct, frozen=True):
    """Everything stored about an action, to persist it and to restore it."""

    id: str
    action: str
    enterprise: Enterprise
    fields: dict[str, str]
    state: ActionState
    steps: tuple[StepState, ...]
    started_by: str
    started_at: dt.datetime
    closed_at: dt.datetime | None = None
    rejected_by: str | None = None
    rejected_reason: str | None = None


class ActionEvent(msgspec.Struct, frozen=True):
    """One change to append to the audit log (see ``signaling.audit.next_entry``)."""

    action_id: str
    event: str
    actor: str
    at: dt.datetime
    data: dict[str, Any]


def _aware(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"{now.isoformat()} has no time zone; pass an aware datetime")
    return now


def _check_enterprise(enterprise: Enterprise) -> Enterprise:
    name = enterprise.name.strip()
    if not name:
        raise ActionError("invalid_enterprise", "the enterprise name is empty")
    problem = uscc_error(enterprise.uscc)
    if problem is not None:
        raise ActionError("invalid_enterprise", f"USCC {enterprise.uscc!r}: {problem}")
    return Enterprise(name=name, uscc=enterprise.uscc)


def _check_fields(action_type: ActionType, fields: Mapping[str, str]) -> dict[str, str]:
    unknown = sorted(set(fields) - set(action_type.fields))
    if unknown:
        raise ActionError(
            "unknown_field", f"{action_type.id} has no field {', '.join(map(repr, unknown))}"
        )
    values = {name: str(fields.get(name, "")).strip() for name in action_type.fields}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise ActionError(
            "missing_field", f"{action_type.id} needs {', '.join(map(repr, missing))}"
        )
    return values


class JointAction:
    """A running joint action; state changes only through ``sign`` and ``reject``."""

    def __init__(self, record: ActionRecord, action_type: ActionType) -> None:
        """Wrap a stored record; prefer ``start`` or ``restore``, which check it."""
        self._record = record
        self._type = action_type

    @classmethod
    def start(
        cls,
        action_id: str,
        action_type: ActionType,
        enterprise: Enterprise,
        *,
        started_by: str,
        now: dt.datetime,
        fields: Mapping[str, str] | None = None,
    ) -> tuple[JointAction, ActionEvent]:
        """Open an action for a valid enterprise with every field filled in."""
        checked = _check_enterprise(enterprise)
        values = _check_fields(action_type, fields or {})
        record = ActionRecord(
            id=action_id,
            action=action_type.id,
            enterprise=checked,
            fields=values,
            state="open",
            steps=tuple(StepState(id=s.id, department=s.department) for s in action_type.steps),
            started_by=started_by,
            started_at=_aware(now),
        )
        action = cls(record, action_type)
        logger.info("action %s (%s) started by %s", action_id, action_type.id, started_by)
        data = {"action": action_type.id, "enterprise": msgspec.to_builtins(checked)}
        return action, action._event("started", started_by, now, {**data, "fields": values})

    @classmethod
    def restore(cls, record: ActionRecord, action_type: ActionType) -> JointAction:
        """Rebuild an action from storage, refusing a record that breaks the rules."""
        expected = [(s.id, s.department) for s in action_type.steps]
        stored = [(s.id, s.department) for s in record.steps]
        if record.action != action_type.id or stored != expected:
            raise ValueError(f"stored action {record.id} does not match type {action_type.id}")
        all_signed = all(s.signed_by is not None for s in record.steps)
        consistent = {
            "open": not all_signed and record.rejected_reason is None,
            "completed": all_signed and record.rejected_reason is None,
            "rejected": bool(record.rejected_reason),
        }[record.state]
        if not consistent:
            raise ValueError(f"stored action {record.id} is {record.state} but its steps disagree")
        return cls(record, action_type)

    @property
    def id(self) -> str:
        return self._record.id

    @property
    def type(self) -> ActionType:
        return self._type

    @property
    def enterprise(self) -> Enterprise:
        return self._record.enterprise

    @property
    def state(self) -> ActionState:
        return self._record.state

    @property
    def steps(self) -> list[StepState]:
        return list(self._record.steps)

    @property
    def record(self) -> ActionRecord:
        """The full state, to store and to send in ``action.updated``."""
        return self._record

    def sign(
        self, step_id: str, signer_department: str, signer_id: str, now: dt.datetime
    ) -> list[ActionEvent]:
        """Sign ``step_id`` for the signer's department; completes the action on the last."""
        _aware(now)
        self._require_open()
        index = next((i for i, s in enumerate(self._record.steps) if s.id == step_id), None)
        if index is None:
            known = ", ".join(s.id for s in self._record.steps)
            raise ActionError("unknown_step", f"{self._type.id} has no step {step_id!r}; {known}")
        step = self._record.steps[index]
        if step.department != signer_department:
            raise ActionError(
                "wrong_department",
                f"step {step_id!r} is signed by {step.department}, not {signer_department}",
            )
        if step.signed_by is not None:
            raise ActionError(
                "already_signed", f"step {step_id!r} was already signed by {step.signed_by}"
            )
        steps = list(self._record.steps)
        steps[index] = msgspec.structs.replace(step, signed_by=signer_id, signed_at=now)
        done = all(s.signed_by is not None for s in steps)
        self._change("completed" if done else "open", now, steps=tuple(steps))
        data = {"step": step_id, "department": signer_department}
        events = [self._event("step_signed", signer_id, now, data)]
        if done:
            events.append(self._event("completed", signer_id, now, {}))
        return events

    def reject(self, reason: str, by: str, now: dt.datetime) -> ActionEvent:
        """Close the action unfinished; the reason is required and kept."""
        _aware(now)
        self._require_open()
        text = reason.strip()
        if not text:
            raise ActionError("reason_required", "a rejection needs a reason")
        self._change("rejected", now, rejected_by=by, rejected_reason=text)
        return self._event("rejected", by, now, {"reason": text})

    def _require_open(self) -> None:
        if self._record.state != "open":
            raise ActionError("not_open", f"action {self.id} is already {self._record.state}")

    def _change(self, state: ActionState, now: dt.datetime, **changes: Any) -> None:
        """The one place the record changes; logs state transitions."""
        old = self._record.state
        closed_at = now if state != "open" else None
        self._record = msgspec.structs.replace(
            self._record, state=state, closed_at=closed_at, **changes
        )
        if old != state:
            logger.info("action %s: %s -> %s", self.id, old, state)

    def _event(self, event: str, actor: str, at: dt.datetime, data: dict[str, Any]) -> ActionEvent:
        return ActionEvent(action_id=self.id, event=event, actor=actor, at=at, data=data)
