"""Joint actions in storage and their audit chain, on SQLite and PostgreSQL.

The chain must survive concurrent writers (seq and prev_hash never race) and
`vwin audit verify` must name the first entry edited or deleted by raw SQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from server.cli import main
from server.storage import Database
from signaling.actions import ActionError, Enterprise, JointAction, load_action_types
from signaling.joint_actions import ActionNotFound
from tests.joint.conftest import uscc

TYPES = load_action_types(Path(__file__).resolve().parents[2] / "configs" / "actions.toml")
DEREG = TYPES["sole_proprietor_deregistration"]
T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)


async def started(db: Database, action_id: str, minute: int = 0) -> None:
    action, event = JointAction.start(
        action_id, DEREG, Enterprise(name="Jiading Noodles", uscc=uscc()),
        started_by="rita", now=T0 + dt.timedelta(minutes=minute))
    await db.create_action(action, event, session_id=None, call_id=None)


async def sign(db: Database, action_id: str, step: str, department: str, who: str) -> None:
    await db.change_action(action_id, TYPES,
                           lambda a: a.sign(step, department, who, T0 + dt.timedelta(hours=1)))


async def test_an_action_signed_by_both_departments_is_completed_and_chained(
        database: Database) -> None:
    await started(database, "a1")
    await sign(database, "a1", "licence_cancelled", "market_regulation", "rita")
    with pytest.raises(ActionError) as refused:
        await sign(database, "a1", "licence_cancelled", "tax", "tom")
    assert refused.value.code == "wrong_department"
    await sign(database, "a1", "tax_clearance_confirmed", "tax", "tom")

    stored = await database.get_action("a1")
    assert stored is not None and stored.record.state == "completed"
    assert [s.signed_by for s in stored.record.steps] == ["rita", "tom"]
    events = [(e.seq, e.event, e.actor) async for e in database.audit_entries()]
    assert events == [(1, "started", "rita"), (2, "step_signed", "rita"),
                      (3, "step_signed", "tom"), (4, "completed", "tom")]
    assert await database.verify_audit() == (4, None)
    with pytest.raises(ActionNotFound):
        await sign(database, "nope", "licence_cancelled", "market_regulation", "rita")


async def test_concurrent_writers_keep_one_unbroken_chain(database: Database) -> None:
    await asyncio.gather(*(started(database, f"a{i}", i) for i in range(12)))
    await asyncio.gather(*(sign(database, f"a{i}", "tax_clearance_confirmed", "tax", f"t{i}")
                           for i in range(12)))
    count, problem = await database.verify_audit()
    assert (count, problem) == (24, None)
    seqs = [e.seq async for e in database.audit_entries()]
    assert seqs == list(range(1, 25))


async def _raw(database: Database, sql: str) -> None:
    async with database._write() as conn:
        await conn.exec_driver_sql(sql)


def _verify(url: str, tmp_path: Path, *extra: str) -> int:
    config = tmp_path / "verify.toml"
    config.write_text(f'[storage]\nurl = "{url}"\n')
    return main(["audit", "verify", "--config", str(config), *extra])


async def test_audit_verify_names_the_edited_or_deleted_entry(
        database: Database, database_url: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(3):
        await started(database, f"a{i}", i)
    await sign(database, "a0", "licence_cancelled", "market_regulation", "rita")
    assert await asyncio.to_thread(_verify, database_url, tmp_path) == 0
    assert "intact: 4 entries" in capsys.readouterr().out

    await _raw(database, "UPDATE audit_log SET actor = 'mallory' WHERE seq = 2")
    assert await asyncio.to_thread(_verify, database_url, tmp_path) == 1
    assert "entry 2 (altered)" in capsys.readouterr().err

    await _raw(database, "UPDATE audit_log SET actor = 'rita' WHERE seq = 2")
    await _raw(database, "DELETE FROM audit_log WHERE seq = 3")
    assert await asyncio.to_thread(_verify, database_url, tmp_path) == 1
    assert "entry 3 (missing)" in capsys.readouterr().err

    await _raw(database, "DELETE FROM audit_log WHERE seq >= 3")
    assert await asyncio.to_thread(_verify, database_url, tmp_path) == 0
    assert await asyncio.to_thread(_verify, database_url, tmp_path, "--expected-last", "4") == 1
    assert "entries 3 to 4 are missing" in capsys.readouterr().err
