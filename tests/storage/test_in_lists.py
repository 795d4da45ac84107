"""The node's rounds over its connected principals send a few statements, not one per count.

Each `IN (...)` length was another SQL text, prepared and kept by every pooled connection
(`server.storage.inlists`): a node whose socket count moved all day (kiosks coming and
going, moved by the rebalancer) filled its connections' statement caches (issue 16, the
restarted node's RSS slope). On both backends, whatever the count, each query now has at
most `len(LENGTHS)` texts, and still finds exactly what it did.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event

from server.auth import token_hash
from server.storage import Database
from server.storage.inlists import LENGTHS, padded

COUNTS = range(1, 61)  # a node's connected terminals moving round after round
NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL text of every statement the database's engine sends."""
    seen: list[str] = []

    def sent(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    engine = database._engine.sync_engine
    event.listen(engine, "before_cursor_execute", sent)
    yield seen
    event.remove(engine, "before_cursor_execute", sent)


def test_padded_lists_keep_their_values_and_take_few_lengths() -> None:
    assert padded([]) == []
    assert padded(["a", "b", "c"]) == ["a", "b", "c", "c"]
    assert {len(padded(list(range(n)))) for n in range(1, 501)} == set(LENGTHS)
    assert len(padded(list(range(700)))) == 700


async def test_terminal_rounds_send_few_statements_whatever_the_count(
        database: Database, statements: list[str]) -> None:
    await database.add_site("park1", "Park", "park")
    ids = [f"T{i:03d}" for i in range(max(COUNTS))]
    for i, terminal_id in enumerate(ids):
        await database.add_terminal(terminal_id, "park1", terminal_id, token_hash(f"tok{i}"))
    await database.revoke_terminal("T007")
    statements.clear()
    for n in COUNTS:
        assert await database.revoked_among([*ids[:n], "gone"]) == (
            {"gone", "T007"} if n > 7 else {"gone"})
        found = await database.terminals_by_token_hashes(
            token_hash(f"tok{i}") for i in range(n))
        assert sorted(t.id for t in found.values()) == [t for t in ids[:n] if t != "T007"]
        await database.touch_terminals(ids[:n], NOW)
        assert set(await database.lapsed_users([f"nobody{i}" for i in range(n)], NOW)) == set()
    texts = set(statements)
    # four queries (and the writes' BEGIN/COMMIT); one text per length reached, not per count
    assert len(texts) <= 4 * len(LENGTHS) + 4, f"{len(texts)} statements for {len(COUNTS)} counts"
