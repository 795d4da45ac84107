"""Forms in a session: `form.present`, `form.sign`, `form.decline`.

A joint action's type may name a form template. The specialist presents it in
the connected call; the visitor reads it on the kiosk and signs with a finger,
or refuses. This module holds the rules (who may present, who may sign, a form
is signed once, a signature's size) and tells every participant; rendering the
PDF, storing it and chaining its hash into the audit log are the edge's work,
reached through the small `FormPress` protocol, which renders off the event loop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

import msgspec

from . import limits as lim
from . import messages as m
from .backend import Router
from .errors import Refused
from .identity import Identity, caller_principal, members_of
from .joint_actions import StoredAction
from .model import Call, CallState
from .outbox import Outbox

FormState = Literal["presented", "signed", "declined"]


class FormRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A form as stored: presented in one call for one joint action; signed or declined once."""

    id: str
    action_id: str
    session_id: str
    call_id: str
    terminal_id: str
    template: str
    state: FormState
    unsigned_sha256: str  # of the HTML as presented, printed on the signed PDF
    view_key: str  # in the pages' `url`, which the participants open in a frame
    presented_by: str
    presented_at: dt.datetime
    sha256: str | None = None  # of the signed PDF
    path: str | None = None  # of the signed PDF, relative to the recordings' directory
    closed_by: str | None = None
    closed_at: dt.datetime | None = None


class FormDone(msgspec.Struct, frozen=True, kw_only=True):
    """The edge's answer to a render it was asked for: the form made, or why not."""

    requested: Literal["form.present", "form.sign"]
    requester: str  # the participant id that asked
    call_id: str
    form: FormRecord | None = None  # None: refused (`code`, `message`)
    code: str = ""
    message: str = ""


FormDoneHandler = Callable[[FormDone], Awaitable[None]]


class FormPress(Protocol):
    """What the form steps need from the edge (`server.forms.press.Press`).

    Filling and rendering take the edge hundreds of milliseconds in a worker process:
    `begin_present` and `begin_sign` only start it, so the asking connection goes on
    being read; the result reaches the handler (the switchboard) as a `FormDone`."""

    async def get_action(self, action_id: str) -> StoredAction | None: ...

    async def get_form(self, form_id: str) -> FormRecord | None: ...

    async def session_forms(self, session_id: str) -> list[FormRecord]: ...

    def begin_present(self, stored: StoredAction, template: str, call: Call,
                      presenter: Identity) -> None:
        """Fill the template and store the form; `FormDone.form` is the presented form."""
        ...

    def begin_sign(self, form: FormRecord, signature: m.Signature, signer: Identity,
                   call: Call) -> None:
        """Render the signature into the PDF, store the file and its hash; refused with
        `form_already_signed` when another signature won the race."""
        ...

    async def decline(self, form: FormRecord, by: Identity) -> FormRecord: ...


def url_of(form: FormRecord) -> str:
    """Where the participants read the presented form's pages: a frame cannot send a
    bearer token, so the URL carries the form's own key (told only to the participants)."""
    return f"/api/forms/{form.id}/pages?key={form.view_key}"


def signers_of(call: Call) -> set[str]:
    """Who may sign a form of this call: its caller, the terminal or the hand-off phone the
    visitor took the call to (then the kiosk serves the next visitor and signs nothing)."""
    return {caller_principal(call)}


def check_signature(signature: m.Signature) -> None:
    """The decoder bounds each part; here the sum of points and the pad's own edges."""
    points = sum(len(stroke) for stroke in signature.strokes)
    if points > lim.SIGNATURE_POINTS_MAX:
        raise Refused("signature_too_large",
                      f"a signature has at most {lim.SIGNATURE_POINTS_MAX} points, not {points}")
    for stroke in signature.strokes:
        for x, y in stroke:
            if x > signature.width or y > signature.height:
                raise Refused("invalid_signature",
                              f"point ({x}, {y}) lies outside the {signature.width} x "
                              f"{signature.height} pad")


class FormDesk:
    """Presents, signs and declines forms for the switchboard's steps."""

    def __init__(self, *, router: Router, clock: Callable[[], float], press: FormPress,
                 templates: Mapping[str, str]) -> None:
        """`templates`: the form template of each action type that has one."""
        self._router = router
        self._clock = clock
        self._press = press
        self.templates = dict(templates)

    async def _connected(self, call_id: str) -> Call:
        call = await self._router.get_call(call_id)
        if call is None or call.state != CallState.CONNECTED:
            raise Refused("not_in_call", f"call {call_id} is not connected")
        return call

    async def present(self, who: Identity, msg: m.FormPresent) -> Outbox:
        """A specialist of the connected call shows the form of one of its joint actions."""
        call = await self._connected(msg.call_id)
        if who.id not in call.agents:
            raise Refused("not_in_call", f"you are not a specialist in call {msg.call_id}")
        stored = await self._press.get_action(msg.action_id)
        if stored is None:
            raise Refused("not_found", f"no joint action {msg.action_id!r}")
        if stored.session_id != call.session_id:
            raise Refused("not_in_session", f"action {msg.action_id} belongs to another session")
        template = self.templates.get(stored.record.action)
        if template is None:
            raise Refused("no_form", f"action type {stored.record.action} has no form")
        if stored.record.state == "rejected":
            raise Refused("not_open", f"action {msg.action_id} was rejected")
        self._press.begin_present(stored, template, call, who)
        return Outbox(self._clock)

    async def _signable(self, who: Identity, form_id: str) -> tuple[FormRecord, Call]:
        """The open form and its connected call, when `who` may sign it."""
        form = await self._press.get_form(form_id)
        if form is None:
            raise Refused("not_found", f"no form {form_id!r}")
        call = await self._connected(form.call_id)
        if who.principal not in signers_of(call):
            raise Refused("not_signer", "only the session's terminal signs its forms")
        if form.state == "signed":
            raise Refused("form_already_signed", f"form {form_id} is already signed")
        if form.state == "declined":
            raise Refused("form_declined", f"form {form_id} was declined")
        return form, call

    async def sign(self, who: Identity, msg: m.FormSign) -> Outbox:
        """The visitor signs at the session's terminal; everyone hears `form.signed`."""
        form, call = await self._signable(who, msg.form_id)
        check_signature(msg.signature)
        self._press.begin_sign(form, msg.signature, who, call)
        return Outbox(self._clock)

    async def finished(self, done: FormDone) -> Outbox:
        """A render is over: `form.presented` or `form.signed` to every participant still
        in the call (and the one who asked), or the refusal to the one who asked."""
        out = Outbox(self._clock)
        form = done.form
        if form is None:
            out.send(done.requester, m.Error(code=done.code, message=done.message,
                                             refused=done.requested, call_id=done.call_id))
            return out
        call = await self._router.get_call(done.call_id)
        members = members_of(call) if call is not None and call.state == CallState.CONNECTED \
            else set()
        targets = sorted(members | {done.requester})
        if done.requested == "form.present":
            out.send_all(targets, m.FormPresented(call_id=form.call_id, action_id=form.action_id,
                                                  form_id=form.id, url=url_of(form)))
        else:
            out.send_all(targets, m.FormSigned(form_id=form.id, sha256=form.sha256 or ""))
        return out

    async def told_again(self, out: Outbox, principal: str, call: Call) -> None:
        """A party (re)connected to a connected call hears where its forms stand: one
        presented, signed or declined while it was away (a park's network blip, its node
        restarted between the render and the announcement) was told to nobody there."""
        for form in await self._press.session_forms(call.session_id):
            if form.call_id != call.id:
                continue
            if form.state == "presented":
                out.send(principal, m.FormPresented(call_id=form.call_id,
                                                    action_id=form.action_id,
                                                    form_id=form.id, url=url_of(form)))
            elif form.state == "signed":
                out.send(principal, m.FormSigned(form_id=form.id, sha256=form.sha256 or ""))
            else:
                out.send(principal, m.FormDeclined(form_id=form.id))

    async def decline(self, who: Identity, msg: m.FormDecline) -> Outbox:
        """The visitor refuses to sign; everyone hears `form.declined`."""
        form, call = await self._signable(who, msg.form_id)
        declined = await self._press.decline(form, who)
        out = Outbox(self._clock)
        out.send_all(sorted(members_of(call) | {who.principal}),
                     m.FormDeclined(form_id=declined.id))
        return out


def _desk(forms: FormDesk | None) -> FormDesk:
    if forms is None:
        raise Refused("unavailable", "forms are not enabled on this server")
    return forms


async def form_present(forms: FormDesk | None, who: Identity, msg: m.FormPresent) -> Outbox:
    return await _desk(forms).present(who, msg)


async def form_sign(forms: FormDesk | None, who: Identity, msg: m.FormSign) -> Outbox:
    return await _desk(forms).sign(who, msg)


async def form_decline(forms: FormDesk | None, who: Identity, msg: m.FormDecline) -> Outbox:
    return await _desk(forms).decline(who, msg)
