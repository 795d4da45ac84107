"""Passwords typed or piped into `vwin`, and the random one of the first `admin`."""

from __future__ import annotations

import getpass
import secrets
import sys


def read_password(prompt_twice: bool = True) -> str:
    """One line from stdin when it is not a TTY; otherwise prompt twice."""
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValueError("no password on standard input")
        return line
    first = getpass.getpass("Password: ")
    if prompt_twice and getpass.getpass("Repeat password: ") != first:
        raise ValueError("the passwords differ")
    if not first:
        raise ValueError("empty password")
    return first


def random_password() -> str:
    return secrets.token_urlsafe(12)


def one_time_password(username: str) -> str:
    """A random password that passes the policy, to be changed at the next login."""
    from server.passwordpolicy import WeakPassword, check_password

    while True:
        password = random_password()
        try:
            check_password(password, username)
        except WeakPassword:
            continue
        return password
