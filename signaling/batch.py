"""A transaction's log entries and messages: logged first, then sent."""

from __future__ import annotations

import datetime as dt
from typing import Any, Protocol

from . import events as ev
from . import messages as m
from .backend import MessageBus, SessionLog
from .model import Call


class Board(Protocol):
    """What a batch needs of the switchboard."""

    log: SessionLog
    bus: MessageBus

    def utcnow(self) -> dt.datetime: ...


class Batch:
    """Log entries and messages of one transaction: logged first, then sent."""

    def __init__(self, board: Board) -> None:
        self._board = board
        self.events: list[ev.LogEvent] = []
        self.sends: list[tuple[str, m.Message]] = []

    def event(self, type_: str, call: Call | None, actor: str | None, **data: Any) -> None:
        self.events.append(
            ev.LogEvent(
                type=type_,
                ts=self._board.utcnow(),
                session_id=call.session_id if call else None,
                call_id=call.id if call else None,
                actor=actor,
                data=data,
            )
        )

    def send(self, principal: str, message: m.Message) -> None:
        self.sends.append((principal, message))

    async def commit(self) -> None:
        if self.events:
            await self._board.log.append(self.events)
        for principal, message in self.sends:
            await self._board.bus.send(principal, m.encode(message))
