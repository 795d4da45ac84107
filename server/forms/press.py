"""The edge's side of forms (`signaling.forms.FormPress`): fill, render, store, audit.

The context a template is filled with is built here from what the server knows (the
joint action, the session's site, the specialists' accounts, the configured time zone);
filling and rendering run in the form workers (`FormPool`). A signed form is written to
the session's folder beside its recordings; its SHA-256 goes into the joint actions'
audit chain in the same transaction that marks the form signed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import msgspec
from babel.dates import format_date, format_datetime

from server.forms import render
from server.forms.pool import FormPool
from server.recording.catalog import resolve
from server.storage.db import Database
from signaling import messages as m
from signaling.actions import ActionEvent, ActionType
from signaling.errors import Refused
from signaling.forms import FormDone, FormDoneHandler, FormRecord
from signaling.identity import Identity, terminal_of
from signaling.joint_actions import StoredAction
from signaling.model import Call

log = logging.getLogger(__name__)

PRESENTED, SIGNED, DECLINED = "form_presented", "form_signed", "form_declined"
"""The audit entries' `event` for a form (chained with the joint action's own entries)."""


def form_folder(call: Call) -> str:
    """The session's folder under `[recording] dir`, as its recordings name it
    (`recorder.manifest.recording_path`: the UTC date the call was answered)."""
    day = dt.datetime.fromtimestamp(call.answered_at or call.enqueued_at, dt.UTC)
    return f"{day:%Y}/{day:%m}/{day:%d}/{call.session_id}"


class Press:
    """Presents and signs forms for the switchboard, with the server's storage."""

    def __init__(self, *, db: Database, pool: FormPool, templates_dir: Path,
                 files_dir: Path, timezone: str, types: Mapping[str, ActionType],
                 departments: Mapping[str, str], on_done: FormDoneHandler,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)) -> None:
        """`departments`: department id -> its (Chinese) name, as the pages show it;
        `on_done`: where each outcome goes (the switchboard, which commits it)."""
        self._db = db
        self._pool = pool
        self._templates = str(templates_dir)
        self._files = files_dir
        self._zone = ZoneInfo(timezone)
        self._types = dict(types)
        self._departments = dict(departments)
        self._clock = clock
        self._handler = on_done
        self._tasks: set[asyncio.Task[None]] = set()

    def begin_present(self, stored: StoredAction, template: str, call: Call,
                      presenter: Identity) -> None:
        self._begin(self.present(stored, template, call, presenter), "form.present",
                    presenter.principal, call.id)

    def begin_sign(self, form: FormRecord, signature: m.Signature, signer: Identity,
                   call: Call) -> None:
        self._begin(self.sign(form, signature, signer, call), "form.sign", signer.principal,
                    call.id)

    def _begin(self, work: Awaitable[FormRecord], requested: Literal["form.present",
               "form.sign"], requester: str, call_id: str) -> None:
        """Run `work` in a task of its own; its outcome goes to the handler."""

        async def run() -> None:
            answer = FormDone(requested=requested, requester=requester, call_id=call_id)
            try:
                answer = msgspec.structs.replace(answer, form=await work)
            except Refused as exc:
                answer = msgspec.structs.replace(answer, code=exc.code, message=exc.message)
            except Exception:
                log.exception("%s for call %s failed", requested, call_id)
                answer = msgspec.structs.replace(answer, code="internal",
                                                 message="the form could not be made")
            await self._handler(answer)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for the forms being made (shutdown: before the workers stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def get_action(self, action_id: str) -> StoredAction | None:
        return await self._db.get_action(action_id)

    async def get_form(self, form_id: str) -> FormRecord | None:
        return await self._db.get_form(form_id)

    async def session_forms(self, session_id: str) -> list[FormRecord]:
        return await self._db.session_forms([session_id])

    async def context(self, stored: StoredAction, call: Call, form_id: str,
                      now: dt.datetime) -> dict[str, Any]:
        """What the template is filled with (docs/forms.md lists it)."""
        record = stored.record
        kind = self._types[record.action]
        specialists = []
        for agent in call.agents:
            user = await self._db.get_user_by_username(agent)
            department = user.department if user is not None else None
            specialists.append({
                "name": user.name if user is not None else agent,
                "department": self._departments.get(department or "", department or ""),
            })
        site = terminal_of(call).site
        return {
            "form": {"id": form_id},
            "enterprise": {"name": record.enterprise.name, "uscc": record.enterprise.uscc},
            "site": {"name": site.name if site is not None else ""},
            "date": {"text": format_date(now.astimezone(self._zone).date(), "long",
                                         locale="zh_CN"),
                     "iso": now.astimezone(self._zone).date().isoformat()},
            "action": {
                "id": record.id, "type": record.action, "name": kind.name_zh,
                "name_en": kind.name_en, "fields": dict(record.fields),
                "steps": [{"name": s.name_zh, "name_en": s.name_en,
                           "department": self._departments.get(s.department, s.department)}
                          for s in kind.steps],
            },
            "specialists": specialists,
        }

    async def present(self, stored: StoredAction, template: str, call: Call,
                      presenter: Identity) -> FormRecord:
        now = self._clock()
        form_id = "f_" + secrets.token_hex(8)
        context = await self.context(stored, call, form_id, now)
        digest, html = await self._pool.run(render.present_html, self._templates, template,
                                            context)
        form = FormRecord(
            id=form_id, action_id=stored.record.id, session_id=call.session_id,
            call_id=call.id, terminal_id=call.terminal_id, template=template,
            state="presented", unsigned_sha256=digest, view_key=secrets.token_urlsafe(16),
            presented_by=presenter.id,
            presented_at=now,
        )
        event = ActionEvent(action_id=form.action_id, event=PRESENTED, actor=presenter.id,
                            at=now, data={"form_id": form_id, "template": template,
                                          "unsigned_sha256": digest})
        log.info("form %s (%s) presented in call %s by %s", form_id, template, call.id,
                 presenter.id)
        return await self._db.create_form(form, context, html, event)

    async def sign(self, form: FormRecord, signature: m.Signature, signer: Identity,
                   call: Call) -> FormRecord:
        content = await self._db.form_content(form.id)
        if content is None:
            raise Refused("not_found", f"no form {form.id!r}")
        now = self._clock()
        relative = f"{form_folder(call)}/form-{form.id}-{secrets.token_hex(4)}.pdf"
        path = resolve(self._files, relative)
        caption = {"signer": signer.name,
                   "time": format_datetime(now, "yyyy-MM-dd HH:mm:ss zzzz",
                                           tzinfo=self._zone, locale="zh_CN"),
                   "unsigned_sha256": form.unsigned_sha256}
        strokes = [[(x, y) for x, y in stroke] for stroke in signature.strokes]
        sig = {"width": signature.width, "height": signature.height, "strokes": strokes}
        digest = await self._pool.run(render.sign_and_store, self._templates, form.template,
                                      content[0], sig, caption, str(path))
        event = ActionEvent(action_id=form.action_id, event=SIGNED, actor=signer.principal,
                            at=now, data={"form_id": form.id, "sha256": digest,
                                          "path": relative})
        try:
            signed = await self._db.close_form(form.id, {
                "state": "signed", "sha256": digest, "path": relative,
                "closed_by": signer.principal, "closed_at": now}, event)
        except BaseException:
            path.unlink(missing_ok=True)  # the other signature won; this file is no one's
            raise
        log.info("form %s signed by %s: %s (%s)", form.id, signer.principal, relative, digest)
        return signed

    async def decline(self, form: FormRecord, by: Identity) -> FormRecord:
        now = self._clock()
        event = ActionEvent(action_id=form.action_id, event=DECLINED, actor=by.principal,
                            at=now, data={"form_id": form.id})
        declined = await self._db.close_form(form.id, {
            "state": "declined", "closed_by": by.principal, "closed_at": now}, event)
        log.info("form %s declined by %s", form.id, by.principal)
        return declined
