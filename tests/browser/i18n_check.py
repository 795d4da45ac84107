"""Is every text a person reads on a page from that language's catalog? The rule, exactly.

A page's texts are its text nodes (hidden ones too: they show in another state of the
page), its `placeholder`, `aria-label`, `title` and `alt` attributes, and its title.
Outside `<script>`, `<style>` and `<template>`, a text passes when, trimmed:

1. it is inside an element marked `translate="no"` (HTML's own marker for text that is
   not to be translated: ids, codes such as a USCC or a session id, and what people or
   administrators wrote: enterprise, site, terminal and person names, chat, notes); or
2. after taking out dates and times as that language writes them (`2026年12月3日`,
   `14:05:00`, `Dec 3, 2026, 2:05:00 PM`), it has no letter at all (numbers, `—`, `·`,
   `★`, `%`, punctuation); or
3. it is a catalog text of that language, or a configured name in it (queue,
   department, action type, step, a material's name or note); or
4. it is a catalog template of that language whose `{placeholders}` hold texts that pass
   in turn; only `{name}`, `{enterprise}` (what people wrote), `{id}`, `{char}` and
   `{expected}` (an id, a typed character) may hold anything; or
5. it is two passing texts joined at a separator (`·`, `;`, `:`, `,`, `/`, `—`,
   brackets, a space or a sentence end), as pages join a name and its figures.

Everything else (an English word in a Chinese page, a raw id such as `market_office`, an
unknown code shown as "其他（offer_gone）") fails.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

#: Placeholders that carry what people wrote or an id / code, not words of the catalog.
FREE_PLACEHOLDERS = frozenset({"name", "enterprise", "id", "char", "expected"})
_SEPARATORS = set(" ·;；:：,，/—()（）、。.")
_DATES = {
    "zh-CN": re.compile(
        r"\d{4}年\d{1,2}月\d{1,2}日|\d{4}/\d{1,2}/\d{1,2}|\d{1,2}:\d{2}(:\d{2})?"),
    "en": re.compile(
        r"[A-Z][a-z]{2} \d{1,2}, \d{4}|\d{1,2}:\d{2}(:\d{2})?( [AP]M)?"),
}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

COLLECT_JS = """() => {
  const out = [];
  const where = (el) => {
    const parts = [];
    for (let e = el; e && e !== document.body && parts.length < 4; e = e.parentElement) {
      parts.unshift(e.id ? `#${e.id}` : e.tagName.toLowerCase());
    }
    return parts.join(" > ");
  };
  const skipped = (el) => !el || el.closest('script, style, template, [translate="no"]');
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    const text = node.textContent.trim();
    if (text && !skipped(node.parentElement)) out.push([text, where(node.parentElement)]);
  }
  for (const el of document.querySelectorAll("[placeholder], [aria-label], [title], img[alt]")) {
    if (skipped(el)) continue;
    for (const name of ["placeholder", "aria-label", "title", "alt"]) {
      const value = (el.getAttribute(name) ?? "").trim();
      if (value) out.push([value, `${where(el)} @${name}`]);
    }
  }
  out.push([document.title.trim(), "<title>"]);
  return out;
}"""


class LanguageCheck:
    """The texts one language allows: its catalog, its configured names, the rule above."""

    def __init__(self, lang: str, catalog: Mapping[str, str], names: Iterable[str]) -> None:
        self.lang = lang
        self.exact = {v.strip() for v in catalog.values()} | {n.strip() for n in names}
        self.templates: list[tuple[re.Pattern[str], list[tuple[str, str]]]] = []
        for key, text in catalog.items():
            if _PLACEHOLDER.search(text):
                self.templates.append(self._compile(key, text.strip()))
        self.ok = lru_cache(maxsize=None)(self._ok)

    @staticmethod
    def _compile(key: str, text: str) -> tuple[re.Pattern[str], list[tuple[str, str]]]:
        groups: list[tuple[str, str]] = []
        pattern, last = "", 0
        for i, m in enumerate(_PLACEHOLDER.finditer(text)):
            pattern += re.escape(text[last:m.start()]) + f"(?P<p{i}>.+?)"
            groups.append((f"p{i}", m.group(1)))
            last = m.end()
        pattern += re.escape(text[last:])
        return re.compile(pattern, re.DOTALL), groups

    def _ok(self, text: str) -> bool:
        text = text.strip()
        if not any(ch.isalpha() for ch in _DATES[self.lang].sub("0", text)):
            return True
        if text in self.exact:
            return True
        for pattern, groups in self.templates:
            match = pattern.fullmatch(text)
            if match and all(name in FREE_PLACEHOLDERS or self.ok(match.group(group))
                             for group, name in groups):
                return True
        for i in range(1, len(text)):
            if (text[i] in _SEPARATORS or text[i - 1] in _SEPARATORS) and \
                    self.ok(text[:i]) and self.ok(text[i:]):
                return True
        return False

    def strays(self, texts: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """The (text, where) pairs that are not from this language."""
        return [(text, where) for text, where in texts if not self.ok(text)]


def language_checks(app: Any) -> dict[str, LanguageCheck]:
    """The check of each language for a running app: its catalog, plus the names its
    configuration gives (queues, departments, action types and steps, materials)."""
    from server import keys
    from server.i18n import LANGUAGES, Catalogs, config_names
    from server.joint import JOINT
    from server.materials import MATERIALS

    catalogs = Catalogs.load()
    names = config_names(app[keys.SETTINGS], app[JOINT].work.types)
    out = {}
    for i, lang in enumerate(LANGUAGES):
        configured = [pair[i] for kind in names.values() for pair in kind.values()]
        configured += [pair[i] for pair in app[MATERIALS].texts()]
        out[lang] = LanguageCheck(lang, catalogs.catalog(lang), configured)
    return out
