"""`vwin`: the command line (the names are the contract operators script against)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from server import commands
from server.accountcommands import add_parsers as add_account_parsers
from server.config import ConfigError, Settings, load_settings
from server.logs import configure as configure_logging
from server.recording.commands import add_parsers
from server.turnserver import turn_check, turn_config
from signaling.limits import SLUG_PATTERN

Command = Callable[[argparse.Namespace, Settings], int | Coroutine[Any, Any, int]]
"""What `set_defaults(func=...)` registers: `serve` runs in the foreground, the rest are
coroutines run here."""


def slug(text: str) -> str:
    """An operator-chosen id (username, site, terminal): the pattern of signaling/limits.py."""
    if not re.fullmatch(SLUG_PATTERN, text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use letters, digits, '.', '_' or '-' (1-64, starting with a letter or "
            "digit)")
    return text


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help="TOML configuration file")
    p = argparse.ArgumentParser(prog="vwin", description="Virtual Window service")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=commands.serve)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply migrations (Alembic)")
    upgrade.set_defaults(func=commands.db_upgrade)

    add_account_parsers(sub, common, slug)

    site = sub.add_parser("site", help="sites")
    site_sub = site.add_subparsers(dest="site_command", required=True)
    sadd = site_sub.add_parser("add", parents=[common], help="add a site")
    sadd.add_argument("site_id", type=slug)
    sadd.add_argument("--name", required=True)
    sadd.add_argument(
        "--kind",
        required=True,
        choices=["park", "market_office", "community", "service_centre", "other"],
    )
    sadd.add_argument("--unit", help="the unit the site belongs to")
    sadd.set_defaults(func=commands.site_add)

    term = sub.add_parser("terminal", help="terminals")
    term_sub = term.add_subparsers(dest="terminal_command", required=True)
    tadd = term_sub.add_parser("add", parents=[common], help="provision a terminal")
    tadd.add_argument("terminal_id", type=slug)
    tadd.add_argument("--site", required=True, type=slug)
    tadd.add_argument("--name")
    tadd.set_defaults(func=commands.terminal_add)
    trev = term_sub.add_parser("revoke", parents=[common], help="disable a terminal at once")
    trev.add_argument("terminal_id")
    trev.set_defaults(func=commands.terminal_revoke)

    audit = sub.add_parser("audit", help="the audit log of joint actions")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", parents=[common],
                                  help="check the hash chain; exit 1 naming the first bad entry")
    verify.add_argument("--expected-last", type=int, metavar="SEQ",
                        help="the last entry known to exist (detects deleted newest entries)")
    verify.set_defaults(func=commands.audit_verify)

    turn = sub.add_parser("turn", help="the TURN relay ([turn], coturn)")
    turn_sub = turn.add_subparsers(dest="turn_command", required=True)
    conf = turn_sub.add_parser("config", parents=[common],
                               help="print a turnserver.conf matching [turn] (for coturn)")
    conf.set_defaults(func=turn_config)
    check = turn_sub.add_parser("check", parents=[common],
                                help="allocate a relay on each [turn] url with REST credentials")
    check.set_defaults(func=turn_check)
    back = sub.add_parser("backup", parents=[common],
                          help="copy the embedded SQLite database and the manifests, live")
    back.add_argument("dir", help="a new or empty directory")
    back.set_defaults(func=commands.backup)
    rest = sub.add_parser("restore", parents=[common], help="put a `vwin backup` back")
    rest.add_argument("dir")
    rest.add_argument("--force", action="store_true", help="replace an existing database")
    rest.set_defaults(func=commands.restore)

    doctor = sub.add_parser("doctor", parents=[common],
                            help="check the configuration's parts; exit 1 if one fails")
    doctor.set_defaults(func=commands.doctor)

    add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
    configure_logging(settings.log)
    func: Command = args.func
    result = func(args, settings)
    return result if isinstance(result, int) else asyncio.run(result)


if __name__ == "__main__":
    sys.exit(main())
