"""Request input decoded strictly at the edge: query strings and JSON bodies into typed structs.

An unknown or repeated query parameter, a number that is not plain ASCII
digits (`limit=²`, `limit=1e2`), a date outside `signaling.limits`' years, an
over-long or over-deep JSON body: all are HTTP 400 with `{error, message}`,
never an exception that reaches the client as a 500.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import msgspec
import msgspec.inspect as mi
from aiohttp import web

from server.http.auth import fail
from signaling import limits as lim

T = TypeVar("T")
_WHOLE = re.compile(r"(0|[1-9][0-9]{0,17})")  # ASCII digits only: str.isdigit() admits '²'

# Query parameter types shared by the routes.
Day = Annotated[str, msgspec.Meta(max_length=40, description="a local date (YYYY-MM-DD) or an "
                                  "ISO-8601 instant")]
Limit = Annotated[int, msgspec.Meta(ge=1, le=500)]


class NoQuery(msgspec.Struct, forbid_unknown_fields=True):
    """The query of a route that takes no parameters."""


@functools.cache
def _int_fields(kind: type[msgspec.Struct]) -> frozenset[str]:
    info = mi.type_info(kind)
    assert isinstance(info, mi.StructType)
    out = set()
    for field in info.fields:
        types = field.type.types if isinstance(field.type, mi.UnionType) else (field.type,)
        if any(isinstance(t, mi.IntType) for t in types):
            out.add(field.encode_name)
    return frozenset(out)


def query_of(request: web.Request, kind: type[T]) -> T:
    """The query string as `kind` (a forbid_unknown_fields Struct); 400 when it is not one."""
    raw = request.query
    if len(raw) != len(set(raw)):
        fail(web.HTTPBadRequest, "invalid_query", "a query parameter is repeated")
    data = {k: v for k, v in raw.items() if v != ""}  # an empty form field means "any"
    assert issubclass(kind, msgspec.Struct)
    for name in _int_fields(kind) & data.keys():
        if not _WHOLE.fullmatch(data[name]):
            fail(web.HTTPBadRequest, "invalid_query", f"{name} must be a whole number")
    try:
        return msgspec.convert(data, kind, strict=False)
    except msgspec.ValidationError as exc:
        fail(web.HTTPBadRequest, "invalid_query", _unknown(str(exc), "parameter"))


async def body_of(request: web.Request, kind: type[T]) -> T:
    """The JSON body as `kind`; 400 for anything else, too big or too deep included."""
    if request.content_length is not None and request.content_length > lim.JSON_BODY_MAX:
        fail(web.HTTPBadRequest, "invalid_body", f"the body exceeds {lim.JSON_BODY_MAX} bytes")
    data = await request.read()
    if len(data) > lim.JSON_BODY_MAX:
        fail(web.HTTPBadRequest, "invalid_body", f"the body exceeds {lim.JSON_BODY_MAX} bytes")
    try:
        return msgspec.json.decode(data, type=kind)
    except RecursionError:
        fail(web.HTTPBadRequest, "invalid_body", "JSON nested too deeply")
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        fail(web.HTTPBadRequest, "invalid_body", _unknown(str(exc), "field"))


def _unknown(detail: str, what: str) -> str:
    if detail.startswith("Object contains unknown field"):
        return f"unknown {what} {detail.split(' field ', 1)[1]}"
    return detail


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
QUERIES: dict[Handler, type[msgspec.Struct]] = {}  # a route's handler -> its query's type
_QUERY = web.RequestKey("query", object)  # the decoded query of the request's route


def takes_query(kind: type[msgspec.Struct]) -> Callable[[H], H]:
    """Declare a handler's query parameters (the OpenAPI document reads the same table)."""

    def register(handler: H) -> H:
        QUERIES[handler] = kind
        return handler

    return register


def query(request: web.Request, kind: type[T]) -> T:
    """The query decoded by `checked_queries` for this request's route."""
    value = request.get(_QUERY)
    if not isinstance(value, kind):
        value = query_of(request, kind)
    return value


@web.middleware
async def checked_queries(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API route: the query decoded into its declared type (none declared: no
    parameters at all), so an unknown parameter is a 400 on every route, new ones included."""
    api = request.path.startswith("/api/") or request.path in ("/healthz", "/metrics")
    if api and request.match_info.http_exception is None:
        route_handler = request.match_info.handler
        request[_QUERY] = query_of(request, QUERIES.get(route_handler, NoQuery))
    return await handler(request)
