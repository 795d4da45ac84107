"""Documents, their access log and material ticks on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

from server.storage.db import Database
from server.storage.documents import Document
from signaling import events as ev
from signaling.events import LogEvent

NOW = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


async def test_documents_ticks_and_access_round_trip(database: Database) -> None:
    await database.append([LogEvent(type=ev.QUEUED, ts=NOW, session_id="s1", call_id="c1",
                                    data={"queue": "tax"})])
    brief = await database.session_brief("s1")
    assert brief is not None and (brief.call_id, brief.queue) == ("c1", "tax")
    assert await database.session_brief("nope") is None
    assert not await database.took_part("s1", "specialist", "alice")

    document = Document(id="doc_1", session_id="s1", kind="jpeg", path="2026/12/06/s1/doc_1.jpg",
                        sha256="a" * 64, size_bytes=1234, width=1280, height=720,
                        added_by="terminal:T1", created_at=NOW, deleted_at=None)
    await database.add_document(document)
    assert await database.get_document("doc_1") == document
    assert await database.list_documents("s1") == [document]
    await database.log_document_access("doc_1", "boss", "10.0.0.5")
    [access] = await database.list_document_access("s1")
    assert (access.document_id, access.username, access.remote) == ("doc_1", "boss", "10.0.0.5")

    await database.tick_material("s1", "id_card", True, "alice")
    await database.tick_material("s1", "business_licence", True, "alice")
    await database.tick_material("s1", "id_card", False, "alice")  # the last word counts
    ticks = {t.item: t.shown for t in await database.list_ticks("s1")}
    assert ticks == {"id_card": False, "business_licence": True}

    assert await database.expired_documents(NOW) == []
    [old] = await database.expired_documents(NOW + dt.timedelta(seconds=1))
    await database.mark_document_deleted(old.id, NOW)
    assert await database.expired_documents(NOW + dt.timedelta(days=1)) == []
    stored = await database.get_document("doc_1")
    assert stored is not None and stored.deleted_at == NOW
