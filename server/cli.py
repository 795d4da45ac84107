"""`vwin`: the command line (the names are the contract operators script against)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from server.config import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML configuration file")
    p = argparse.ArgumentParser(prog="vwin", description="Virtual Window service")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", parents=[common], help="apply migrations (Alembic)")

    user = sub.add_parser("user", help="accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", parents=[common], help="add a specialist or manager")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=["specialist", "manager"])
    add.add_argument("--skills", default="", help="queue:level,... e.g. tax:1,registration:2")
    add.add_argument("--department", help="a configured [[departments]] id, e.g. tax")
    add.add_argument("--name", help="display name (default: the username)")

    site = sub.add_parser("site", help="sites")
    site_sub = site.add_subparsers(dest="site_command", required=True)
    sadd = site_sub.add_parser("add", parents=[common], help="add a site")
    sadd.add_argument("site_id")
    sadd.add_argument("--name", required=True)
    sadd.add_argument(
        "--kind",
        required=True,
        choices=["park", "market_office", "community", "service_centre", "other"],
    )

    term = sub.add_parser("terminal", help="terminals")
    term_sub = term.add_subparsers(dest="terminal_command", required=True)
    tadd = term_sub.add_parser("add", parents=[common], help="provision a terminal")
    tadd.add_argument("terminal_id")
    tadd.add_argument("--site", required=True)
    tadd.add_argument("--name")
    trev = term_sub.add_parser("revoke", parents=[common], help="disable a terminal at once")
    trev.add_argument("terminal_id")

    audit = sub.add_parser("audit", help="the audit log of joint actions")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", parents=[common],
                                  help="check the hash chain; exit 1 naming the first bad entry")
    verify.add_argument("--expected-last", type=int, metavar="SEQ",
                        help="the last entry known to exist (detects deleted newest entries)")

    from server.recording.commands import add_parsers

    add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides: dict[str, Any] = {}
    if args.command == "serve":
        server = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
        if server:
            overrides["server"] = server
    try:
        settings = load_settings(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"vwin: configuration error: {exc}", file=sys.stderr)
        return 2
    from server import commands

    name = args.command + "_" + str(getattr(args, f"{args.command}_command", "") or "")
    handler: Command | None = getattr(commands, name.rstrip("_"), None)
    if handler is None:
        print(f"vwin: unknown command {args.command}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return commands.serve(settings)
    return asyncio.run(handler(args, settings))


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


if __name__ == "__main__":
    sys.exit(main())
