"""Forms in storage on SQLite and PostgreSQL: two signatures racing, one wins; the audit
chain holds the winner's hash and stays intact."""

from __future__ import annotations

import asyncio
import datetime as dt

from server.storage import Database
from signaling.actions import ActionEvent
from signaling.errors import Refused
from signaling.forms import FormRecord

T0 = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


def _presented(form_id: str, session_id: str = "s1") -> FormRecord:
    return FormRecord(id=form_id, action_id="a1", session_id=session_id, call_id="c1",
                      terminal_id="T1", template="sole_proprietor_deregistration",
                      state="presented", unsigned_sha256="0" * 64, view_key="k",
                      presented_by="rita", presented_at=T0)


def _event(form_id: str, kind: str, data: dict[str, str]) -> ActionEvent:
    return ActionEvent(action_id="a1", event=kind, actor="terminal:T1",
                       at=T0 + dt.timedelta(minutes=1), data={"form_id": form_id, **data})


async def test_of_two_signatures_racing_one_is_stored(database: Database) -> None:
    await database.create_form(_presented("f1"), {"enterprise": {"name": "嘉定面馆"}},
                               "<p>嘉定面馆</p>", _event("f1", "form_presented", {}))
    assert await database.form_content("f1") == ({"enterprise": {"name": "嘉定面馆"}},
                                                 "<p>嘉定面馆</p>")

    async def sign(digest: str) -> FormRecord:
        return await database.close_form("f1", {
            "state": "signed", "sha256": digest, "path": f"x/{digest[:4]}.pdf",
            "closed_by": "terminal:T1", "closed_at": T0 + dt.timedelta(minutes=1)},
            _event("f1", "form_signed", {"sha256": digest}))

    results = await asyncio.gather(sign("a" * 64), sign("b" * 64), return_exceptions=True)
    won = [r for r in results if isinstance(r, FormRecord)]
    lost = [r for r in results if isinstance(r, Refused)]
    assert len(won) == 1 and len(lost) == 1 and lost[0].code == "form_already_signed"
    stored = await database.get_form("f1")
    assert stored == won[0] and stored.state == "signed"
    signed = [e.data["sha256"] async for e in database.audit_entries() if e.event == "form_signed"]
    assert signed == [stored.sha256]
    assert await database.verify_audit() == (2, None)
    assert [f.id for f in await database.session_forms(["s1"])] == ["f1"]
    assert await database.session_forms(["s2"]) == []
