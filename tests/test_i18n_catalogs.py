"""The message catalogs: the same keys in both languages, every key the pages use exists,
configured names in both languages, and times as people read them in the configured zone."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from server.app import create_app
from server.config import ConfigError, load_settings
from server.i18n import (
    CATALOG_DIR,
    LANGUAGES,
    CatalogError,
    Catalogs,
    catalog_problems,
    choose_language,
    format_datetime,
)
from server.joint import load_joint
from signaling.actions import ErrorCode as ActionErrorCode
from tests.helpers import make_settings, quick_specialist

WEB = Path(__file__).resolve().parent.parent / "web"
# t("key") / i18n.t("key") / this.#t("key") in the modules; t("key") / data-i18n="key" in templates.
_KEY = r"""["']([a-zA-Z_]+(?:\.[a-zA-Z_]+)+)["']"""
_JS_KEY = re.compile(r"(?:\bt|i18n\.t|#i18n\.t|this\.#t)\(\s*" + _KEY)
_TEMPLATE_KEY = re.compile(r"\bt\(\s*" + _KEY + r'|data-i18n[a-z-]*="([\w.]+)"')


def test_both_languages_have_the_same_keys_and_placeholders() -> None:
    catalogs = Catalogs.load()
    assert catalog_problems({lang: catalogs.catalog(lang) for lang in LANGUAGES}) == []


def test_a_key_missing_in_one_language_is_refused(tmp_path: Path) -> None:
    for lang, text in (("zh-CN", '{"a": "甲", "b": "乙 {n}"}'), ("en", '{"a": "A", "b": "B {m}"}')):
        (tmp_path / f"{lang}.json").write_text(text, encoding="utf-8")
    with pytest.raises(CatalogError, match="placeholders differ"):
        Catalogs.load(tmp_path)
    (tmp_path / "en.json").write_text('{"a": "A"}', encoding="utf-8")
    with pytest.raises(CatalogError, match="'b' missing in en"):
        Catalogs.load(tmp_path)


def test_every_key_the_pages_use_is_in_the_catalogs() -> None:
    keys = set(Catalogs.load().catalog("zh-CN"))
    used: dict[str, str] = {}
    for path in sorted((WEB / "static" / "js").glob("*.js")):
        for key in _JS_KEY.findall(path.read_text(encoding="utf-8")):
            used.setdefault(key, path.name)
    for path in sorted((WEB / "templates").rglob("*.html")):
        for found in _TEMPLATE_KEY.findall(path.read_text(encoding="utf-8")):
            key = found[0] or found[1]
            if not key.endswith("."):  # t("site_kind." + kind): the kinds are checked below
                used.setdefault(key, path.name)
    assert len(used) > 300
    assert {key: where for key, where in used.items() if key not in keys} == {}


def test_codes_shown_to_people_have_words() -> None:
    """Site kinds, event kinds, outcomes and every error code the server sends (HTTP errors,
    refusals of protocol messages, joint-action refusals) are all in the catalog."""
    from server.storage.records import SITE_KINDS
    from signaling import events

    keys = set(Catalogs.load().catalog("en"))
    kinds = {f"site_kind.{k}" for k in SITE_KINDS}
    event_kinds = {f"event.{v}" for k, v in vars(events).items()
                   if k.isupper() and isinstance(v, str) and not k.startswith("STATE_")}
    outcomes = {f"outcome.{o}" for o in ("resolved", "follow_up", "referred")}
    root = Path(__file__).resolve().parent.parent
    codes = set(get_args(ActionErrorCode))
    raised = re.compile(r'fail\(web\.HTTP\w+, "([a-z_]+)"|Refused\("([a-z_]+)"|"error": "([a-z_]+)"'
                        r'|\bcode="([a-z_]+)"')
    for path in [*(root / "server").rglob("*.py"), *(root / "signaling").rglob("*.py")]:
        codes |= {c for found in raised.findall(path.read_text()) for c in found if c}
    errors = {f"error.{c}" for c in codes}
    assert (kinds | event_kinds | outcomes | errors) - keys == set()


def test_every_refusal_a_request_is_rejected_with_has_words() -> None:
    """A request the router refuses at its enqueue is logged `rejected` with the refusal's
    code (`requests._placed`), which the manager's session page shows as a reason: every
    code the enqueue script (and the fence check before it) refuses with, but the one the
    step takes for its own earlier attempt (`duplicate_call`), has words."""
    from server.cluster import scripts
    from signaling.errors import FENCED

    keys = set(Catalogs.load().catalog("en"))
    refused = set(re.findall(r'refuse\("([a-z_]+)"', scripts.ENQUEUE)) - {"duplicate_call"}
    assert "call_in_progress" in refused
    reasons = {f"reason.{c}" for c in refused | {FENCED, "internal"}}
    assert reasons - keys == set()


def test_shipped_departments_cover_the_action_types() -> None:
    settings = load_settings(env={})
    ids = {d.id for d in settings.departments}
    assert {"market_regulation", "tax"} <= ids
    types, _ = load_joint(settings.joint, settings.server.timezone, departments=ids)
    assert {step.department for t in types.values() for step in t.steps} <= ids


def test_a_department_an_action_names_must_be_configured() -> None:
    settings = load_settings(env={})
    with pytest.raises(ConfigError, match="market_regulation"):
        load_joint(settings.joint, settings.server.timezone, departments=["tax"])


def test_departments_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "vwin.toml"
    path.write_text('[[departments]]\nid = "tax"\nname = "税务"\nname_en = "Tax"\n'
                    '[[departments]]\nid = "tax"\nname = "税务局"\nname_en = "Tax office"\n',
                    encoding="utf-8")
    with pytest.raises(ConfigError, match="duplicate department"):
        load_settings(path, env={})
    settings = load_settings(env={})
    assert settings.department("tax").name == "税务"
    with pytest.raises(ConfigError, match=r"unknown department 'nope'; configured: .*tax"):
        settings.department("nope")


def test_language_choice() -> None:
    assert choose_language({}, {}) == "zh-CN"
    assert choose_language({}, {"vwin_lang": "en"}) == "en"
    assert choose_language({"lang": "zh-CN"}, {"vwin_lang": "en"}) == "zh-CN"
    assert choose_language({"lang": "fr"}, {"vwin_lang": "xx"}) == "zh-CN"


def test_times_in_the_configured_zone_in_each_language() -> None:
    moment = dt.datetime(2026, 12, 3, 6, 5, tzinfo=dt.UTC)
    assert format_datetime(moment, "zh-CN", "Asia/Shanghai") == "2026年12月3日 14:05:00"
    assert format_datetime(moment, "en", "Asia/Shanghai") == "Dec 3, 2026, 2:05:00\u202fPM"


def test_catalogs_are_where_the_server_reads_them() -> None:
    assert sorted(p.name for p in CATALOG_DIR.glob("*.json")) == ["en.json", "zh-CN.json"]


async def test_pages_choose_their_language(aiohttp_client: Any, tmp_path: Path) -> None:
    """Chinese by default; `?lang=en` answers in English and remembers it; the kiosk starts
    in Chinese whatever a staff member chose on that browser; the 403 page speaks too."""
    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'vwin.db'}"))
    client = await aiohttp_client(app)
    page = await client.get("/login")
    assert '<html lang="zh-CN">' in await page.text() and "用户名" in await page.text()
    english = await client.get("/login?lang=en")
    assert '<html lang="en">' in await english.text() and "Username" in await english.text()
    assert "vwin_lang=en" in english.headers["Set-Cookie"]
    again = await client.get("/login", cookies={"vwin_lang": "en"})
    assert '<html lang="en">' in await again.text()
    kiosk = await client.get("/kiosk", cookies={"vwin_lang": "en"})
    assert '<html lang="zh-CN">' in await kiosk.text()
    specialist = await quick_specialist(app, "lin", {"tax": 1})
    denied = await client.get("/manage", cookies={"vwin_session": specialist, "vwin_lang": "zh-CN"})
    assert denied.status == 403
    assert "本页面仅供管理人员使用；您当前以专员身份登录。" in await denied.text()
