"""The password policy: at least 10 characters, not containing the username, not one of
the common passwords shipped as data (configs/common-passwords.txt).

A refusal names its reason as a code the pages translate, and a message for the CLI.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Final

from server.config import ROOT

MIN_LENGTH: Final = 10
MAX_LENGTH: Final = 256  # argon2 hashes any length; a bound keeps a login cheap to refuse
COMMON_FILE: Final = ROOT / "configs" / "common-passwords.txt"


class WeakPassword(ValueError):
    """The password breaks the policy; `code` says how."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@functools.cache
def common_passwords(path: Path = COMMON_FILE) -> frozenset[str]:
    """The refused passwords, lower case (read once)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return frozenset(s.strip().lower() for s in lines if s.strip() and not s.startswith("#"))


def check_password(password: str, username: str) -> None:
    """Raise `WeakPassword` unless `password` is acceptable for `username`."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword("password_too_short",
                           f"the password needs at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise WeakPassword("password_too_long",
                           f"the password may have at most {MAX_LENGTH} characters")
    if username and username.lower() in password.lower():
        raise WeakPassword("password_contains_username", "the password contains the username")
    if password.lower() in common_passwords():
        raise WeakPassword("password_common",
                           "the password is one of the most common passwords")
