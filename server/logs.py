"""Logging as operators read it: `[log] level`, `format = "text" | "json"`, quiet access lines.

JSON lines carry `call_id` and `session_id` as fields whenever the code that logs knows
them (`SUBJECT`, or `extra=`). Secrets never reach a line: every record passes a
filter that masks device tokens, tickets, recorder tokens, bearer values and
`password=`-style pairs, whatever module logged them.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any, Final

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from server.config import LogSettings
from server.edge import FORWARDED_REMOTE

CONTEXT_FIELDS: Final = ("call_id", "session_id")
QUIET_PREFIXES: Final = ("/static/", "/healthz", "/metrics")
"""Paths whose access lines `access = "requests"` leaves out: polled, or assets."""

SUBJECT: contextvars.ContextVar[object | None] = contextvars.ContextVar("vwin_log", default=None)
"""What the lines logged meanwhile are about (e.g. the message a frame holds): its fields are
read only when a line is logged. Set and reset around every WebSocket frame, by hand
(`token = SUBJECT.set(msg)` ... `SUBJECT.reset(token)`): a context manager around it cost
three Python calls a frame."""

_SECRET = re.compile(
    r"(?P<prefixed>\bvw[tkr]_[A-Za-z0-9_\-]{8,})"
    r"|(?P<bearer>\b[Bb]earer\s+)[A-Za-z0-9_\-.~+/=]+"
    r"|(?P<pair>\b(?:password|passwd|token|ticket|secret|credential)[\"']?\s*[=:]\s*[\"']?)"
    r"[^\s\"',&}]+"
)
MASK: Final = "***"


def redact(text: str) -> str:
    """`text` with every secret-looking value replaced by `***`."""
    def mask(match: re.Match[str]) -> str:
        if match.group("prefixed"):
            return match.group("prefixed")[:4] + MASK
        head = match.group("bearer") or match.group("pair")
        return f"{head}{MASK}"

    return _SECRET.sub(mask, text)


class RedactFilter(logging.Filter):
    """Formats the message once, masked; later handlers see only the masked text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        record.msg, record.args = cleaned, None
        subject = SUBJECT.get()
        if subject is not None:
            for name in CONTEXT_FIELDS:
                value = getattr(subject, name, None)
                if value and not getattr(record, name, None):
                    setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, call_id, session_id, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in (*CONTEXT_FIELDS, "method", "path", "status", "duration_ms", "remote"):
            value = getattr(record, name, None)
            if value is not None:
                out[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = redact(record.exc_text)
        return json.dumps(out, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The usual line, plus `[call=... session=...]` when known."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{n.split('_')[0]}={getattr(record, n)}" for n in CONTEXT_FIELDS
                       if getattr(record, n, None))
        return f"{line} [{ids}]" if ids else line


def configure(settings: LogSettings, stream: Any = None) -> logging.Handler:
    """Install one stderr handler on the root logger per `[log]`; returns it."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactFilter())
    handler.setFormatter(JsonFormatter() if settings.format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.level.upper())
    logging.getLogger("aiohttp.access").setLevel(
        logging.WARNING if settings.access == "none" else logging.INFO)
    return handler


class AccessLogger(AbstractAccessLogger):
    """Access lines without query strings (they may carry tickets); quiet paths left out."""

    quiet: tuple[str, ...] = QUIET_PREFIXES

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        path = request.path
        if self.quiet and path.startswith(self.quiet):
            return
        remote = request.get(FORWARDED_REMOTE) or request.remote  # the client a proxy named
        self.logger.info(
            "%s %s %s %d %.1f ms", remote, request.method, path, response.status,
            time * 1000,
            extra={"method": request.method, "path": path, "status": response.status,
                   "duration_ms": round(time * 1000, 1), "remote": remote})


class VerboseAccessLogger(AccessLogger):
    """`[log] access = "all"`: every request, static files and health checks too."""

    quiet = ()


def access_logger(settings: LogSettings) -> type[AbstractAccessLogger]:
    return VerboseAccessLogger if settings.access == "all" else AccessLogger
