"""Joint actions in a session: `action.start`, `action.sign`, `action.reject`.

The rules of an action live in `signaling.actions`; this module checks who may
ask (a specialist of the connected call starts; a specialist of the step's
department signs, in the call or later over HTTP), has the repository store
the change together with its audit entries, and then tells every participant
of the call with `action.updated`. Storage is reached only through the small
`ActionRepository` protocol, so the module stays free of I/O.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import Callable, Mapping
from typing import Protocol

import msgspec

from . import messages as m
from .actions import ActionEvent, ActionRecord, ActionType, Enterprise, JointAction, get_action_type
from .backend import MessageBus, Router
from .errors import Refused
from .identity import Identity, Role, members_of, principal_of
from .model import CallState
from .outbox import Outbox

log = logging.getLogger(__name__)

Change = Callable[[JointAction], list[ActionEvent]]


class StoredAction(msgspec.Struct, frozen=True, kw_only=True):
    """An action as stored: its record and the session it was started in, if any."""

    record: ActionRecord
    session_id: str | None = None
    call_id: str | None = None


class ActionNotFound(Refused):
    """No action with that id: the repository raises it from `change_action`."""

    def __init__(self, action_id: str) -> None:
        super().__init__("not_found", f"no joint action {action_id!r}")


class ActionRepository(Protocol):
    """What the joint-work service needs from storage (implemented by `Database`)."""

    async def create_action(self, action: JointAction, event: ActionEvent, *,
                            session_id: str | None, call_id: str | None) -> StoredAction: ...

    async def change_action(self, action_id: str, types: Mapping[str, ActionType],
                            change: Change) -> StoredAction: ...


def updated_message(stored: StoredAction) -> m.ActionUpdated:
    """The `action.updated` frame for the current state of an action."""
    record = stored.record
    steps = [
        m.ActionStep(id=s.id, department=s.department, signed_by=s.signed_by,
                     signed_at=s.signed_at.isoformat() if s.signed_at else None)
        for s in record.steps
    ]
    return m.ActionUpdated(
        action_id=record.id, action=record.action, state=record.state, steps=steps,
        enterprise=m.ActionEnterprise(name=record.enterprise.name, uscc=record.enterprise.uscc),
        fields=dict(record.fields), started_by=record.started_by, call_id=stored.call_id,
        session_id=stored.session_id, rejected_by=record.rejected_by,
        reason=record.rejected_reason,
    )


def _department(who_department: str | None) -> str:
    if not who_department:
        raise Refused("no_department", "your account has no department, so it cannot sign steps")
    return who_department


class JointWork:
    """Starts, signs and rejects joint actions for the switchboard and the HTTP API."""

    def __init__(self, *, router: Router, bus: MessageBus, clock: Callable[[], float],
                 types: Mapping[str, ActionType], repository: ActionRepository) -> None:
        self._router = router
        self._bus = bus
        self._clock = clock
        self.types = dict(types)
        self._repository = repository

    def _now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC)

    async def start(self, who: Identity, msg: m.ActionStart) -> tuple[StoredAction, Outbox]:
        """A specialist of the connected call opens an action for an enterprise."""
        call = await self._router.get_call(msg.call_id)
        if call is None or call.state != CallState.CONNECTED or who.id not in call.agents:
            raise Refused("not_in_call",
                          f"you are not a specialist in connected call {msg.call_id}")
        action_type = get_action_type(self.types, msg.action)
        enterprise = Enterprise(name=msg.enterprise.name, uscc=msg.enterprise.uscc.strip())
        action, event = JointAction.start(
            "a_" + secrets.token_hex(8), action_type, enterprise, started_by=who.id,
            now=self._now(), fields=msg.fields,
        )
        stored = await self._repository.create_action(
            action, event, session_id=call.session_id, call_id=call.id)
        return stored, await self.announce(stored, who.principal)

    async def sign(self, actor_id: str, department: str | None, action_id: str,
                   step: str) -> tuple[StoredAction, Outbox]:
        """Sign one step for the signer's department (in the call or later over HTTP)."""
        own = _department(department)
        now = self._now()
        stored = await self._repository.change_action(
            action_id, self.types, lambda action: action.sign(step, own, actor_id, now))
        return stored, await self.announce(stored, principal_of(Role.SPECIALIST, actor_id))

    async def reject(self, actor_id: str, department: str | None, action_id: str,
                     reason: str) -> tuple[StoredAction, Outbox]:
        """Close the action unfinished; only a department that signs it may do so."""
        own = _department(department)
        now = self._now()

        def change(action: JointAction) -> list[ActionEvent]:
            if own not in action.type.departments:
                raise Refused("wrong_department",
                              f"{own} takes no part in {action.type.id}; it cannot reject it")
            return [action.reject(reason, actor_id, now)]

        stored = await self._repository.change_action(action_id, self.types, change)
        return stored, await self.announce(stored, principal_of(Role.SPECIALIST, actor_id))

    async def announce(self, stored: StoredAction, actor: str | None = None) -> Outbox:
        """`action.updated` to every participant of the call still connected, and the actor
        (the action is stored in the database with its audit entries, not in the log)."""
        targets: set[str] = set()
        if stored.call_id is not None:
            call = await self._router.get_call(stored.call_id)
            if call is not None and call.state == CallState.CONNECTED:
                targets.update(members_of(call))
        if actor is not None:
            targets.add(actor)
        out = Outbox(self._clock)
        out.send_all(sorted(targets), updated_message(stored))
        return out


def _service(actions: JointWork | None) -> JointWork:
    if actions is None:
        raise Refused("unavailable", "joint actions are not enabled on this server")
    return actions


async def action_start(actions: JointWork | None, who: Identity, msg: m.ActionStart
                       ) -> Outbox:
    return (await _service(actions).start(who, msg))[1]


async def action_sign(actions: JointWork | None, who: Identity, msg: m.ActionSign) -> Outbox:
    return (await _service(actions).sign(who.id, who.department, msg.action_id, msg.step))[1]


async def action_reject(actions: JointWork | None, who: Identity, msg: m.ActionReject
                        ) -> Outbox:
    return (await _service(actions).reject(who.id, who.department, msg.action_id,
                                           msg.reason))[1]
