"""`vwin user ...` and `vwin unit ...` as an operator runs them (subprocesses), on SQLite and
PostgreSQL, next to a running server that ends a disabled specialist's console."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server import keys
from server.app import create_app
from server.revocation import DISABLED
from tests.accounts.test_staff_api import closed_with
from tests.helpers import connect, make_settings
from tests.test_cli import vwin, write_config


async def test_units_sites_and_accounts_from_the_command_line(
        aiohttp_client: Any, database_url: str, tmp_path: Path) -> None:
    config = ["--config", write_config(tmp_path / "vwin.toml", database_url)]
    for args in (["sh", "--name", "上海市", "--level", "city"],
                 ["jd", "--name", "嘉定区", "--level", "district", "--parent", "sh"]):
        assert (done := await vwin("unit", "add", *args, *config)).code == 0, done
    refused = await vwin("unit", "add", "x", "--name", "X", "--level", "village",
                         "--parent", "nowhere", *config)
    assert refused.code == 1 and "nowhere" in refused.err, refused
    refused = await vwin("unit", "add", "y", "--name", "Y", "--level", "city", "--parent", "jd",
                         *config)
    assert refused.code == 1 and "below" in refused.err, refused
    site = await vwin("site", "add", "jd-newcity", "--name", "嘉定新城市场监管所", "--kind",
                      "market_office", "--unit", "jd", *config)
    assert site.code == 0, site

    lin = ["user", "add", "lin", "--role", "specialist", "--skills", "tax:1",
           "--department", "tax", "--name", "林晓", *config]
    refused = await vwin(*lin[:8], "fishing", *lin[9:], stdin="correct horse battery\n")
    assert refused.code == 2 and "fishing" in refused.err, refused
    for weak, why in (("short pw", "10 characters"), ("i-am-lin-here", "username"),
                      ("qwertyuiop", "common")):
        result = await vwin(*lin, stdin=weak + "\n")
        assert result.code == 2 and why in result.err, result
    assert (done := await vwin(*lin, stdin="correct horse battery\n")).code == 0, done
    manager = await vwin("user", "add", "zhou", "--role", "manager", "--unit", "jd",
                         "--name", "周敏", *config, stdin="another fine secret\n")
    assert manager.code == 0, manager
    assert (await vwin("user", "add", "wu", "--role", "manager", "--unit", "nope", *config,
                       stdin="another fine secret\n")).code == 1

    changed = await vwin("user", "set", "lin", "--name", "林晓明", "--skills", "tax:2,general:1",
                         *config)
    assert changed.code == 0, changed
    assert (await vwin("user", "set", "lin", "--unit", "nope", *config)).code == 1
    assert (await vwin("user", "set", "ghost", "--name", "G", *config)).code == 1
    listed = await vwin("user", "list", *config)
    lines = {line.split("\t")[0]: line.split("\t") for line in listed.out.splitlines()[1:]}
    assert lines["lin"][1:5] == ["林晓明", "specialist", "tax", "general:1,tax:2"]
    assert lines["zhou"][1] == "周敏" and lines["zhou"][5] == "嘉定区 (jd)"
    assert lines["lin"][6] == "active"

    app = create_app(make_settings(database_url))
    client = await aiohttp_client(app)
    assert (await vwin("user", "passwd", "lin", *config, stdin="short\n")).code == 2
    assert (await vwin("user", "passwd", "lin", *config, stdin="a new long secret\n")).code == 0
    assert await app[keys.AUTH].login("lin", "correct horse battery", "t") is None
    login = await app[keys.AUTH].login("lin", "a new long secret", "t")
    assert login is not None
    console = await connect(client, login.token)
    disabled = await vwin("user", "disable", "lin", *config)
    assert disabled.code == 0, disabled
    assert await closed_with(console.ws) == (DISABLED, "disabled")  # within seconds
    assert await app[keys.AUTH].user_for_token(login.token) is None
    assert await app[keys.AUTH].login("lin", "a new long secret", "t2") is None
    assert "disabled" in (await vwin("user", "list", *config)).out
    assert (await vwin("user", "enable", "lin", *config)).code == 0
    assert await app[keys.AUTH].login("lin", "a new long secret", "t3") is not None
    assert (await vwin("user", "disable", "ghost", *config)).code == 1

    trail = await app[keys.DB].account_changes("lin")
    assert [c.action for c in reversed(trail)] == [
        "created", "changed", "password_changed", "disabled", "enabled"]
    assert all(c.actor.startswith("cli:") for c in trail)
    units = await vwin("unit", "list", *config)
    assert "jd\t嘉定区\tdistrict\tsh" in units.out
    site_row = await app[keys.DB].get_site("jd-newcity")
    assert site_row is not None and site_row.unit_id == "jd"
