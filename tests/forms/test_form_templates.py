"""The shipped templates: each action type's form exists, fills from the documented
context and renders to a PDF whose text (pdftotext) carries the values; a missing
template stops the server at start."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from server.config import ConfigError
from server.forms import render
from server.forms.service import form_templates
from signaling.actions import load_action_types

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "configs" / "forms"
TYPES = load_action_types(ROOT / "configs" / "actions.toml")


def context(action: str, fields: dict[str, str]) -> dict[str, Any]:
    kind = TYPES[action]
    return {
        "form": {"id": "f_test"},
        "enterprise": {"name": "上海安亭汽配有限公司", "uscc": "91310114MA1GT30009"},
        "site": {"name": "嘉定新城市场监管所"},
        "date": {"text": "2026年12月6日", "iso": "2026-12-06"},
        "action": {"id": "a_test", "type": action, "name": kind.name_zh,
                   "name_en": kind.name_en, "fields": fields,
                   "steps": [{"name": s.name_zh, "name_en": s.name_en,
                              "department": s.department} for s in kind.steps]},
        "specialists": [{"name": "林晓", "department": "市场监管局"}],
    }


def test_every_action_type_names_a_shipped_template() -> None:
    assert form_templates(TEMPLATES, TYPES) == {
        "sole_proprietor_deregistration": "sole_proprietor_deregistration",
        "registered_address_change": "registered_address_change"}


def test_a_missing_template_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "sole_proprietor_deregistration.html").write_text("<p>{{ form.id }}</p>")
    with pytest.raises(ConfigError, match=r"registered_address_change\.html is missing"):
        form_templates(tmp_path, TYPES)


def test_the_address_change_form_carries_the_new_address(tmp_path: Path) -> None:
    filled = context("registered_address_change", {"new_address": "嘉定区墨玉南路888号"})
    digest, html = render.present_html(str(TEMPLATES), "registered_address_change", filled)
    assert "嘉定区墨玉南路888号" in html and len(digest) == 64
    pdf = tmp_path / "signed.pdf"
    signature = {"width": 300, "height": 100, "strokes": [[(10.0, 10.0), (290.0, 90.0)]]}
    caption = {"signer": "嘉定新城1号窗口", "time": "2026-12-06 10:00:00",
               "unsigned_sha256": digest}
    render.sign_and_store(str(TEMPLATES), "registered_address_change", filled, signature,
                          caption, str(pdf))
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], check=True,
                          capture_output=True, text=True).stdout
    for value in ("变更登记申请", "上海安亭汽配有限公司", "91310114MA1GT30009",
                  "嘉定区墨玉南路888号", "林晓", "嘉定新城1号窗口", digest):
        assert value in text
    with pytest.raises(FileExistsError):  # a signed form is never overwritten
        render.write_new(str(pdf), b"%PDF-")
