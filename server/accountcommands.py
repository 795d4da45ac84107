"""`vwin user ...` and `vwin unit ...`: accounts and the city's units from the command line.

Every change goes into the account audit trail with the operating-system user as the actor.
A password change or a disable ends the person's logins at once and their live connections
within seconds (a running server watches for it).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from typing import Any

from server.auth import hash_password
from server.config import ConfigError, Settings
from server.passwordpolicy import WeakPassword, check_password
from server.passwords import read_password
from server.storage.db import open_database
from server.storage.errors import StorageError
from server.storage.records import UNIT_LEVELS, User


def add_parsers(sub: Any, common: argparse.ArgumentParser, slug: Callable[[str], str]) -> None:
    """Add `user` and `unit` to the `vwin` parser; `slug` checks an operator-chosen id."""
    user = sub.add_parser("user", help="accounts")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", parents=[common], help="add a specialist or manager")
    add.add_argument("username", type=slug)
    add.add_argument("--role", required=True, choices=["specialist", "manager"])
    _details(add)
    add.set_defaults(func=user_add)
    listing = user_sub.add_parser("list", parents=[common], help="list the accounts")
    listing.set_defaults(func=user_list)
    passwd = user_sub.add_parser("passwd", parents=[common], help="set a new password")
    passwd.add_argument("username")
    passwd.set_defaults(func=user_passwd)
    change = user_sub.add_parser("set", parents=[common], help="change an account")
    change.add_argument("username")
    _details(change)
    change.set_defaults(func=user_set)
    for verb, func in (("disable", user_disable), ("enable", user_enable)):
        cmd = user_sub.add_parser(verb, parents=[common], help=f"{verb} an account")
        cmd.add_argument("username")
        cmd.set_defaults(func=func)
    unit = sub.add_parser("unit", help="the city's units (city, district, sub-district...)")
    unit_sub = unit.add_subparsers(dest="unit_command", required=True)
    uadd = unit_sub.add_parser("add", parents=[common], help="add a unit")
    uadd.add_argument("unit_id", type=slug)
    uadd.add_argument("--name", required=True)
    uadd.add_argument("--level", required=True, choices=list(UNIT_LEVELS))
    uadd.add_argument("--parent", help="the unit above (none for the city)")
    uadd.set_defaults(func=unit_add)
    ulist = unit_sub.add_parser("list", parents=[common], help="list the units")
    ulist.set_defaults(func=unit_list)


def _details(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--skills", help="queue:level,... e.g. tax:1,registration:2")
    parser.add_argument("--department", help="a configured [[departments]] id, e.g. tax")
    parser.add_argument("--name", help="display name (default: the username)")
    parser.add_argument("--unit", help="the unit (a manager sees its sites only)")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _error(message: object) -> int:
    print(f"vwin: {message}", file=sys.stderr)
    return 1


def parse_skills(text: str, settings: Settings) -> dict[str, int]:
    """`tax:1,registration:2` -> {"tax": 1, "registration": 2}; queues must be configured."""
    skills: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        queue, _, level = part.partition(":")
        try:
            skills[queue] = int(level or "1")
        except ValueError:
            raise ValueError(f"skill {part!r}: the level must be a number (queue:level)") from None
    unknown = set(skills) - {q.id for q in settings.queues}
    if unknown:
        raise ValueError(f"unknown queue(s) in --skills: {sorted(unknown)}")
    return skills


def _new_password(username: str) -> str:
    password = read_password()
    check_password(password, username)
    return password


async def user_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        skills = parse_skills(args.skills or "", settings)
        if args.department is not None:
            settings.department(args.department)
        password = _new_password(args.username)
    except (ValueError, WeakPassword, ConfigError) as exc:
        print(f"vwin: {exc}", file=sys.stderr)
        return 2
    async with open_database(settings.storage.url) as db:
        if args.unit and await db.get_unit(args.unit) is None:
            return _error(f"no unit {args.unit!r} (add it with `vwin unit add`)")
        try:
            await db.add_user(args.username, args.role, hash_password(password),
                              args.name or args.username, args.department, skills,
                              unit_id=args.unit, actor=_actor())
        except StorageError as exc:
            return _error(exc)
    print(f"added {args.role} {args.username}")
    return 0


def _line(user: User, units: dict[str, str]) -> str:
    skills = ",".join(f"{q}:{n}" for q, n in sorted(user.skills.items())) or "-"
    unit = f"{units.get(user.unit_id, user.unit_id)} ({user.unit_id})" if user.unit_id else "-"
    state = "disabled" if user.disabled else ("must-change-password"
                                              if user.must_change_password else "active")
    return "\t".join([user.username, user.name, user.role, user.department or "-", skills,
                      unit, state])


async def user_list(args: argparse.Namespace, settings: Settings) -> int:
    """One tab-separated line per account: username, name, role, department, skills, unit,
    state."""
    async with open_database(settings.storage.url) as db:
        units = {u.id: u.name for u in await db.list_units()}
        users = await db.list_users()
    print("username\tname\trole\tdepartment\tskills\tunit\tstate")
    for user in users:
        print(_line(user, units))
    return 0


async def user_passwd(args: argparse.Namespace, settings: Settings) -> int:
    try:
        password = _new_password(args.username)
    except (ValueError, WeakPassword) as exc:
        print(f"vwin: {exc}", file=sys.stderr)
        return 2
    async with open_database(settings.storage.url) as db:
        if not await db.change_password(args.username, hash_password(password),
                                        must_change=False, actor=_actor()):
            return _error(f"no user {args.username!r}")
    print(f"password of {args.username} changed; their logins ended")
    return 0


async def user_set(args: argparse.Namespace, settings: Settings) -> int:
    changes: dict[str, Any] = {}
    try:
        if args.skills is not None:
            changes["skills"] = parse_skills(args.skills, settings)
        if args.department:
            settings.department(args.department)
    except (ValueError, ConfigError) as exc:
        print(f"vwin: {exc}", file=sys.stderr)
        return 2
    for option, column in (("name", "name"), ("department", "department"), ("unit", "unit_id")):
        value = getattr(args, option)
        if value is not None:
            changes[column] = value or None  # an empty value clears department or unit
    if not changes:
        return _error("nothing to change (give --name, --skills, --department or --unit)")
    async with open_database(settings.storage.url) as db:
        if changes.get("unit_id") and await db.get_unit(changes["unit_id"]) is None:
            return _error(f"no unit {changes['unit_id']!r}")
        try:
            user = await db.update_user(args.username, changes, actor=_actor())
        except StorageError as exc:
            return _error(exc)
    print(f"changed {user.username}: {', '.join(sorted(changes))}")
    return 0


async def _set_disabled(args: argparse.Namespace, settings: Settings, disabled: bool) -> int:
    async with open_database(settings.storage.url) as db:
        if not await db.set_disabled(args.username, disabled, actor=_actor()):
            return _error(f"no user {args.username!r}")
    if disabled:
        print(f"disabled {args.username}; their logins ended, a running server disconnects "
              "them within seconds")
    else:
        print(f"enabled {args.username}")
    return 0


async def user_disable(args: argparse.Namespace, settings: Settings) -> int:
    return await _set_disabled(args, settings, True)


async def user_enable(args: argparse.Namespace, settings: Settings) -> int:
    return await _set_disabled(args, settings, False)


async def unit_add(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.storage.url) as db:
        try:
            await db.add_unit(args.unit_id, args.name, args.level, args.parent)
        except StorageError as exc:
            return _error(exc)
    print(f"added {args.level} {args.unit_id}")
    return 0


async def unit_list(args: argparse.Namespace, settings: Settings) -> int:
    async with open_database(settings.storage.url) as db:
        units = await db.list_units()
    print("id\tname\tlevel\tparent")
    for unit in units:
        print("\t".join([unit.id, unit.name, unit.level, unit.parent_id or "-"]))
    return 0
