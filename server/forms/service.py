"""Forms wired into the application: the press, its worker pool, the app key."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aiohttp import web

from server.config import ConfigError, Settings
from server.forms.pool import FormPool
from server.forms.press import Press
from server.joint import project_path
from server.storage.db import Database
from signaling.actions import ActionType
from signaling.forms import FormDoneHandler


class FormServices:
    """What the forms' HTTP handlers and shutdown need, kept under `FORMS`."""

    def __init__(self, press: Press, pool: FormPool, templates: Mapping[str, str]) -> None:
        self.press = press
        self.pool = pool
        self.templates = dict(templates)  # action type -> its form template


FORMS = web.AppKey("forms", FormServices)


def form_templates(templates_dir: Path, types: Mapping[str, ActionType]) -> dict[str, str]:
    """Each action type's template; ConfigError naming a template file that is missing."""
    templates = {t.id: t.form for t in types.values() if t.form}
    for action, template in templates.items():
        if not (templates_dir / f"{template}.html").is_file():
            raise ConfigError(f"action {action}: form template {template}.html is missing "
                              f"from {templates_dir}")
    return templates


def form_services(settings: Settings, db: Database, types: Mapping[str, ActionType],
                  on_done: FormDoneHandler) -> FormServices:
    """The press over this server's storage; the workers start on the first form; each
    outcome goes to `on_done`."""
    templates_dir = project_path(settings.forms.templates_dir)
    templates = form_templates(templates_dir, types)
    pool = FormPool(settings.forms.workers, settings.forms.nice)
    press = Press(db=db, pool=pool, templates_dir=templates_dir,
                  files_dir=Path(settings.recording.dir), timezone=settings.server.timezone,
                  types=types, departments={d.id: d.name for d in settings.departments},
                  on_done=on_done)
    return FormServices(press, pool, templates)
