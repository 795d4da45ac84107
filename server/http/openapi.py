"""The HTTP API as an OpenAPI 3.1 document, generated from the msgspec types the handlers use.

Query parameters come from the table `params.QUERIES` the query middleware
enforces, request bodies from the structs `body_of` decodes, so the document
cannot drift from what the server accepts. `GET /api/openapi.json` serves it;
`python -m server.http.openapi` renders docs/api.md (a test keeps both in sync
with the router).
"""

from __future__ import annotations

from typing import Any

import msgspec
from aiohttp import web

from server.http import answers, api, appointments, joint, materials, reports, staff
from server.http.params import QUERIES, Handler, NoQuery
from signaling import limits as lim

PUBLIC: tuple[str, ...] = ()
ANY = ("manager", "specialist")
MANAGER = ("manager",)
SPECIALIST = ("specialist",)
TERMINAL = ("terminal",)
JSON = "application/json"


class ErrorBody(msgspec.Struct):
    """Every refusal: a code a program can test and a message a person can read."""

    error: str
    message: str


class Operation(msgspec.Struct, frozen=True):
    method: str
    path: str
    summary: str
    roles: tuple[str, ...]
    body: Any = None  # the request body's struct, None for none
    reply: Any = None  # the 2xx JSON body's struct, None for "a JSON object"
    media: str = JSON
    status: int = 200


OPERATIONS = (
    Operation("GET", "/healthz", "Liveness and readiness", PUBLIC),
    Operation("GET", "/metrics", "Prometheus metrics ([metrics] token or allow list)", PUBLIC,
              media="text/plain"),
    Operation("POST", "/api/login", "Log in: a bearer token and the session cookies", PUBLIC,
              body=api.LoginBody, reply=answers.LoginReply),
    Operation("POST", "/api/logout", "End this login; the user's sockets close (4411)", ANY,
              reply=answers.Status),
    Operation("POST", "/api/password", "Change one's password; every login ends (4413)", ANY,
              body=api.PasswordBody, reply=answers.Status),
    Operation("GET", "/api/me", "Who is logged in", ANY, reply=answers.Me),
    Operation("GET", "/api/ws-ticket", "A single-use ticket for the console's hello",
              SPECIALIST, reply=answers.Ticket),
    Operation("GET", "/api/queues", "Live queue figures and today's", MANAGER),
    Operation("GET", "/api/queues/stream", "The queue figures as server-sent events", MANAGER,
              media="text/event-stream"),
    Operation("GET", "/api/sessions", "The session log, filtered, newest first", MANAGER),
    Operation("GET", "/api/sessions.csv", "The session log as CSV", MANAGER, media="text/csv"),
    Operation("GET", "/api/sessions/{id}", "One session: participants, events, recordings",
              MANAGER),
    Operation("GET", "/api/sessions/{id}/recording-access", "Who fetched its recordings",
              MANAGER),
    Operation("GET", "/api/recordings/{id}", "One recording (WebM, range requests)", MANAGER,
              media="video/webm"),
    Operation("GET", "/api/recorders", "The recorders connected now", MANAGER),
    Operation("GET", "/api/materials", "The materials to bring for a queue and/or action "
              "(terminals too, with their device token)", TERMINAL + ANY),
    Operation("POST", "/api/sessions/{id}/materials", "Tick an item as shown (the session's "
              "specialists)", SPECIALIST, body=materials.TickBody),
    Operation("POST", "/api/sessions/{id}/documents", "Add a still to the session in its call: "
              "the body is the image (image/jpeg or image/png, at most [documents] max_bytes: "
              "413); not a whole JPEG/PNG: 415; re-encoded without metadata",
              TERMINAL + SPECIALIST, status=201),
    Operation("GET", "/api/documents/{id}", "One captured document (its specialists during the "
              "call, managers after); every fetch logged", ANY, media="image/jpeg"),
    Operation("GET", "/api/sessions/{id}/document-access", "Who fetched its documents",
              MANAGER),
    Operation("GET", "/api/sites", "Sites", MANAGER, reply=answers.Sites),
    Operation("POST", "/api/sites", "Add a site", MANAGER, body=api.SiteBody, reply=answers.Site,
              status=201),
    Operation("GET", "/api/terminals", "Terminals, online or not", MANAGER),
    Operation("POST", "/api/terminals", "Provision a terminal; its device token, once",
              MANAGER, body=api.TerminalBody, reply=answers.NewTerminal, status=201),
    Operation("POST", "/api/terminals/{id}/revoke", "Disable a terminal at once (4410)",
              MANAGER, reply=answers.Revoked),
    Operation("GET", "/api/action-types", "Joint action types", ANY),
    Operation("GET", "/api/actions", "Joint actions (a specialist: their department's)", ANY),
    Operation("GET", "/api/actions/{id}", "One joint action and its audit entries", ANY),
    Operation("POST", "/api/actions/{id}/sign", "Sign one's department's step", SPECIALIST,
              body=joint.SignBody),
    Operation("POST", "/api/actions/{id}/reject", "Reject a joint action", SPECIALIST,
              body=joint.RejectBody),
    Operation("POST", "/api/matters", "Open a pending matter (one's own department)", ANY,
              body=joint.MatterBody, status=201),
    Operation("GET", "/api/matters", "Pending matters (a specialist: their department's)", ANY),
    Operation("GET", "/api/matters/{id}", "One pending matter and its history", ANY),
    Operation("PATCH", "/api/matters/{id}", "Move a pending matter", ANY,
              body=joint.MatterPatch),
    Operation("GET", "/api/reports", "Reports by site, queue, department, specialist or unit",
              MANAGER),
    Operation("GET", "/api/reports.csv", "The report as CSV", MANAGER, media="text/csv"),
    Operation("GET", "/api/reports/staffing",
              "A day's staffing estimate per queue and hour (Erlang C) beside who was on duty",
              MANAGER, reply=reports.Staffing),
    Operation("GET", "/api/users", "Staff accounts (of the manager's units)", MANAGER),
    Operation("POST", "/api/users", "Add an account; its one-time password, once", MANAGER,
              body=staff.NewUser, status=201),
    Operation("GET", "/api/users/audit", "The account audit trail, newest first", MANAGER),
    Operation("PATCH", "/api/users/{id}", "Change name, department, skills or unit", MANAGER,
              body=staff.UserChanges),
    Operation("POST", "/api/users/{id}/reset-password",
              "A one-time password, once; their logins and sockets end (4413)", MANAGER),
    Operation("POST", "/api/users/{id}/disable", "Disable; their logins and sockets end (4414)",
              MANAGER),
    Operation("POST", "/api/users/{id}/enable", "Enable a disabled account", MANAGER),
    Operation("GET", "/api/units", "The units (city, district, ...) the manager sees, nested",
              MANAGER),
    # forms generated and signed in a session (issue 14)
    Operation("GET", "/api/forms/{form_id}",
              "A signed form (PDF attachment): managers, the action's departments", ANY,
              media="application/pdf"),
    Operation("GET", "/api/forms/{form_id}/pages",
              "A presented form's pages (HTML, for a frame); `key` from form.presented",
              PUBLIC, media="text/html"),
    Operation("GET", "/api/sessions/{id}/forms", "A session's forms: signed, declined, open",
              MANAGER),
    Operation("GET", "/api/openapi.json", "This document", PUBLIC),
    # Appointments (docs/appointments.md)
    Operation("GET", "/api/appointments/slots", "A day's slots of a queue, with free seats",
              PUBLIC, reply=appointments.Slots),
    Operation("POST", "/api/appointments", "Book a slot (rate-limited per address; 409 "
              "slot_full)", PUBLIC, body=appointments.BookingBody, reply=appointments.Booked,
              status=201),
    Operation("GET", "/api/appointments", "A day's appointments, by slot", MANAGER,
              reply=appointments.Listing),
    Operation("GET", "/api/appointments/{code}", "One appointment, by its code", PUBLIC,
              reply=appointments.Booked),
    Operation("DELETE", "/api/appointments/{code}", "Cancel an appointment by its code",
              PUBLIC, reply=appointments.Booked),
    Operation("GET", "/api/appointments/{code}/qr.svg", "The code as a QR code (SVG)", PUBLIC,
              media="image/svg+xml"),
)

SECURITY_SCHEMES = {
    "manager": {"type": "http", "scheme": "bearer",
                "description": "A manager's login token (`POST /api/login`)."},
    "specialist": {"type": "http", "scheme": "bearer",
                   "description": "A specialist's login token (`POST /api/login`)."},
    "terminal": {"type": "http", "scheme": "bearer",
                 "description": "A kiosk's device token (`POST /api/terminals`), on the "
                                "routes that say so."},
    "session": {"type": "apiKey", "in": "cookie", "name": "vwin_session",
                "description": "The browser's session cookie; unsafe methods also need the "
                               "`X-CSRF-Token` header equal to the `vwin_csrf` cookie."},
}
_ERRORS = {400: "Bad input", 401: "Not logged in", 403: "Not allowed (role, department, "
           "CSRF, Origin)", 404: "No such thing", 409: "Conflicts with the current state",
           413: "Body too large", 415: "Not JSON (or, for a document, not a JPEG or PNG)",
           429: "Throttled"}


def _queries(app: web.Application) -> dict[tuple[str, str], type[msgspec.Struct]]:
    out: dict[tuple[str, str], type[msgspec.Struct]] = {}
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter", "")
        handler: Handler = route.handler
        out[(route.method, path)] = QUERIES.get(handler, NoQuery)
    return out


def _parameters(op: Operation, query: type[msgspec.Struct],
                components: dict[str, Any]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": lim.ID_MAX}}
        for name in ("id", "code", "form_id") if "{" + name + "}" in op.path]
    (schema,), defs = msgspec.json.schema_components([query], ref_template=_REF)
    components.update(defs)
    struct = defs[schema["$ref"].rsplit("/", 1)[1]]
    required = set(struct.get("required", []))
    for name, prop in struct.get("properties", {}).items():
        prop = _not_null(prop)
        params.append({"name": name, "in": "query", "required": name in required,
                       "schema": prop})
    return params


_REF = "#/components/schemas/{name}"


def _not_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent rather than null: `X | None` documents as X."""
    prop = {k: v for k, v in prop.items() if k != "default"}
    options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in prop and len(options) == 1:
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        return {**options[0], **rest}
    return prop


def _operation(op: Operation, query: type[msgspec.Struct],
               components: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": op.summary, "operationId": _operation_id(op),
                           "parameters": _parameters(op, query, components)}
    if op.roles:
        out["security"] = [{role: []} for role in op.roles] + [{"session": []}]
        out["x-roles"] = list(op.roles)
    else:
        out["security"] = []
    if op.body is not None:
        (schema,), defs = msgspec.json.schema_components([op.body], ref_template=_REF)
        components.update(defs)
        out["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
    if op.media == JSON:
        if op.reply is not None:
            (reply,), defs = msgspec.json.schema_components([op.reply], ref_template=_REF)
            components.update(defs)
        else:
            reply = {"type": "object"}
        ok: dict[str, Any] = {"description": "Done", "content": {JSON: {"schema": reply}}}
    else:
        ok = {"description": "Done", "content": {op.media: {"schema": {"type": "string"}}}}
    responses: dict[str, Any] = {str(op.status): ok}
    if op.path == "/healthz":
        responses["503"] = {"description": "Starting", "content": {JSON: {"schema": {
            "type": "object"}}}}
    for status, text in _ERRORS.items():
        responses[str(status)] = {"description": text, "content": {
            JSON: {"schema": {"$ref": _REF.format(name="ErrorBody")}}}}
    if op.path == "/metrics":
        responses["403"] = {"description": "Not allowed", "content": {
            "text/plain": {"schema": {"type": "string"}}}}
    out["responses"] = responses
    return out


def _operation_id(op: Operation) -> str:
    words = op.path.strip("/").replace("{id}", "by_id").replace(".", "_").replace("-", "_")
    return op.method.lower() + "_" + words.replace("/", "_")


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`'s HTTP API."""
    queries = _queries(app)
    (_, ), components = msgspec.json.schema_components([ErrorBody], ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        query = queries.get((op.method, op.path), NoQuery)
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, query, components)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Virtual Window HTTP API", "version": "1",
                 "description": "JSON over HTTP for kiosk vendors, district systems and the "
                                "staff pages; signalling is the WebSocket of docs/protocol.md."},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """`GET /api/openapi.json`."""
    return web.json_response(document(request.app))


def documented() -> set[tuple[str, str]]:
    return {(op.method, op.path) for op in OPERATIONS}


def setup_openapi(app: web.Application) -> None:
    app.router.add_get("/api/openapi.json", openapi_json)
