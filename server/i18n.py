"""The pages' languages: one JSON message catalog per language, for Jinja and the ES modules.

`web/i18n/zh-CN.json` (the default) and `web/i18n/en.json` map the same keys to
plain strings with `{name}` placeholders. Templates call `t("key")`; the same
catalog travels to the page's modules in a `<script type="application/json">`
block (`web/static/js/i18n.js` reads it), so both sides say the same words.
Names that are configuration (queues, departments, action types and steps) are
not in the catalogs: they come from the settings, in both languages, beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_datetime as babel_datetime

from server.config import Settings
from signaling.actions import ActionType

CATALOG_DIR = Path(__file__).resolve().parent.parent / "web" / "i18n"
LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
#: Staff's choice of language, remembered by the browser across logins (not a secret).
LANG_COOKIE = "vwin_lang"
LANG_COOKIE_MAX_AGE = 365 * 24 * 3600
_BABEL_LOCALE = {"zh-CN": "zh_CN", "en": "en"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class CatalogError(Exception):
    """A catalog is missing, unreadable, or disagrees with the other language's keys."""


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def fill(template: str, params: Mapping[str, object]) -> str:
    """`{name}` replaced by params[name]; an unknown placeholder is left as it is (as in JS)."""
    return _PLACEHOLDER.sub(
        lambda m: str(params[m.group(1)]) if m.group(1) in params else m.group(0), template
    )


class Catalogs:
    """Every language's catalog, checked to have the same keys and placeholders."""

    def __init__(self, catalogs: Mapping[str, Mapping[str, str]]) -> None:
        self._catalogs = {lang: dict(catalogs[lang]) for lang in LANGUAGES}
        problems = catalog_problems(self._catalogs)
        if problems:
            raise CatalogError("; ".join(problems[:10]))

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR) -> Catalogs:
        data: dict[str, dict[str, str]] = {}
        for lang in LANGUAGES:
            path = directory / f"{lang}.json"
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CatalogError(f"{path}: {exc}") from None
            if not isinstance(loaded, dict) or not all(
                isinstance(v, str) for v in loaded.values()
            ):
                raise CatalogError(f"{path}: must map keys to strings")
            data[lang] = loaded
        return cls(data)

    def catalog(self, lang: str) -> dict[str, str]:
        return self._catalogs[lang]

    def text(self, lang: str, key: str, **params: object) -> str:
        """The message in `lang`; an unknown key shows itself, so it is noticed."""
        return fill(self._catalogs[lang].get(key, key), params)


def catalog_problems(catalogs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Keys present in one language only, empty texts, placeholders that differ."""
    problems: list[str] = []
    first, *others = LANGUAGES
    for lang in others:
        for key in sorted(set(catalogs[first]) - set(catalogs[lang])):
            problems.append(f"{key!r} missing in {lang}")
        for key in sorted(set(catalogs[lang]) - set(catalogs[first])):
            problems.append(f"{key!r} missing in {first}")
    for lang in LANGUAGES:
        for key, text in catalogs[lang].items():
            if not text.strip():
                problems.append(f"{key!r} is empty in {lang}")
            for other in LANGUAGES:
                if key in catalogs[other] and placeholders(text) != placeholders(
                    catalogs[other][key]
                ):
                    problems.append(f"{key!r}: placeholders differ between {lang} and {other}")
    return sorted(set(problems))


def choose_language(query: Mapping[str, str], cookies: Mapping[str, str]) -> str:
    """`?lang=` if valid, then the remembered cookie, then Simplified Chinese."""
    for candidate in (query.get("lang"), cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return DEFAULT_LANGUAGE


def config_names(settings: Settings, action_types: Mapping[str, ActionType]) -> dict[str, Any]:
    """Names from the configuration, [Chinese, English] by id, for the pages to show."""
    return {
        "queue": {q.id: [q.name, q.name_en or q.name] for q in settings.queues},
        "department": {d.id: [d.name, d.name_en] for d in settings.departments},
        "action": {a.id: [a.name_zh, a.name_en] for a in action_types.values()},
        "step": {
            f"{a.id}.{s.id}": [s.name_zh, s.name_en]
            for a in action_types.values()
            for s in a.steps
        },
    }


def format_datetime(value: dt.datetime, lang: str, timezone: str) -> str:
    """A moment as people read it in `lang`, in the configured time zone (Babel's CLDR data)."""
    text = babel_datetime(value, "medium", tzinfo=ZoneInfo(timezone), locale=_BABEL_LOCALE[lang])
    return str(text)
