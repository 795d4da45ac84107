"""Spreadsheet-safe CSV cells (OWASP "CSV injection"): text never starts a formula.

A text cell beginning with `=`, `+`, `-`, `@`, tab or carriage return is
prefixed with `'`, which spreadsheet programs show as text. Numbers the server
computed are written as they are. Every export writes its cells through here.
"""

from __future__ import annotations

from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """The cell for `value`: "" for None, numbers as written, text made inert."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text
