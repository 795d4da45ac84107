"""The materials a visitor should have ready, per queue and per joint-action type.

Data, not code (`[materials] file`, default configs/materials.toml): an operator adds
an item without a release. The file is checked once at start (`load_materials`):
unknown keys, an item listed twice, a bad id or an example picture that does not exist
stop the server with a line naming the place. A list for a queue or action type that is
not configured is left out with a warning naming it (a site that runs fewer queues keeps
the shipped file).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable
from typing import Annotated

import msgspec
from aiohttp import web

from server.config import ROOT, ConfigError, Settings
from server.joint import project_path
from signaling.actions import ActionConfigError, load_action_types

log = logging.getLogger(__name__)
STATIC = ROOT / "web" / "static"
_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EXAMPLE = re.compile(r"^[a-z0-9_/-]{1,200}\.(svg|png|jpg|jpeg|webp)$")

Text = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Note = Annotated[str, msgspec.Meta(max_length=1000)]


class Item(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """One thing to bring: `example` is a picture under web/static (served at /static/)."""

    id: str
    name_zh: Text
    name_en: Text
    note_zh: Note = ""
    note_en: Note = ""
    required: bool = True
    example: str | None = None


class MaterialList(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    """The items of one queue (`[[queues]]`) or one action type (`[[actions]]`)."""

    id: str
    items: list[Item]


class MaterialsFile(msgspec.Struct, kw_only=True, frozen=True, forbid_unknown_fields=True):
    queues: list[MaterialList] = msgspec.field(default_factory=list)
    actions: list[MaterialList] = msgspec.field(default_factory=list)


class Materials:
    """The checked lists, by queue id and by action id."""

    def __init__(self, queues: dict[str, list[Item]], actions: dict[str, list[Item]],
                 known_queues: Collection[str], known_actions: Collection[str]) -> None:
        self.queues = queues
        self.actions = actions
        self.known_queues = frozenset(known_queues)
        self.known_actions = frozenset(known_actions)

    def items_for(self, queue: str | None, action: str | None) -> list[tuple[str, Item]]:
        """The queue's items then the action's, each once: [(where, item)]."""
        seen: set[str] = set()
        out: list[tuple[str, Item]] = []
        for where, items in (("queue", self.queues.get(queue or "", [])),
                             ("action", self.actions.get(action or "", []))):
            for item in items:
                if item.id not in seen:
                    seen.add(item.id)
                    out.append((where, item))
        return out

    def texts(self) -> list[tuple[str, str]]:
        """Every (Chinese, English) name and note: configured words the pages may show."""
        lists = [*self.queues.values(), *self.actions.values()]
        pairs = [(i.name_zh, i.name_en) for items in lists for i in items]
        return pairs + [(i.note_zh, i.note_en) for items in lists for i in items if i.note_zh]

    def item_ids(self) -> frozenset[str]:
        """Every item id of every list (a tick names one of them)."""
        lists = [*self.queues.values(), *self.actions.values()]
        return frozenset(item.id for items in lists for item in items)


def _check_list(where: str, entry: MaterialList) -> None:
    ids = [item.id for item in entry.items]
    for item in entry.items:
        if not _ID.match(item.id):
            raise ConfigError(f"{where}: item {item.id!r} is not a lower-case identifier")
        if not (item.name_zh.strip() and item.name_en.strip()):
            raise ConfigError(f"{where}: item {item.id} needs name_zh and name_en")
        if item.example is not None:
            if not _EXAMPLE.match(item.example) or ".." in item.example:
                raise ConfigError(f"{where}: item {item.id}: example {item.example!r} must be "
                                  "a picture path under web/static, e.g. img/materials/x.svg")
            if not (STATIC / item.example).is_file():
                raise ConfigError(f"{where}: item {item.id}: example picture "
                                  f"web/static/{item.example} does not exist")
    duplicate = next((i for i in ids if ids.count(i) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"{where}: item {duplicate!r} is listed twice")


def _index(source: str, kind: str, lists: Iterable[MaterialList],
           known: Collection[str]) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for entry in lists:
        where = f"{source}: {kind} {entry.id!r}"
        if entry.id in out:
            raise ConfigError(f"{where} is listed twice")
        _check_list(where, entry)
        if entry.id not in known:
            log.warning("%s is not configured (known: %s): its list is left out", where,
                        ", ".join(sorted(known)))
            continue
        out[entry.id] = list(entry.items)
    return out


def load_materials(settings: Settings) -> Materials:
    """Read and check the materials file against the configured queues and action types."""
    source = project_path(settings.materials.file)
    try:
        parsed = msgspec.toml.decode(source.read_bytes(), type=MaterialsFile)
        actions = load_action_types(project_path(settings.joint.actions_file))
    except OSError as exc:
        raise ConfigError(f"materials.file {source}: {exc.strerror or exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except ActionConfigError as exc:
        raise ConfigError(str(exc)) from None
    queues = [q.id for q in settings.queues]
    return Materials(_index(str(source), "queue", parsed.queues, queues),
                     _index(str(source), "action", parsed.actions, list(actions)),
                     queues, list(actions))


def example_url(item: Item) -> str | None:
    return None if item.example is None else f"/static/{item.example}"


MATERIALS = web.AppKey("materials", Materials)


def describe(where: str, item: Item) -> dict[str, object]:
    """An item as `GET /api/materials` shows it."""
    data: dict[str, object] = msgspec.to_builtins(item)
    data["example"] = example_url(item)
    data["for"] = where
    return data

