"""Documents captured in a session, who fetched them, and the materials ticked as shown.

A document row points at an image file beside the session's recordings (path relative
to `[recording] dir`) with the SHA-256 of the stored bytes, so `vwin recording verify`
can name one that was altered or lost. Tables of migration 0006.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec
import sqlalchemy as sa

from server.storage.engine import StoreBase, require_aware
from server.storage.schema import UTCDateTime, metadata, session_participants, sessions

session_documents = sa.Table(
    "session_documents",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), nullable=False),
    sa.Column("kind", sa.String, nullable=False),  # "jpeg" or "png"
    sa.Column("path", sa.String, nullable=False),  # relative to [recording] dir
    sa.Column("sha256", sa.String, nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("added_by", sa.String, nullable=False),  # a participant id
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("deleted_at", UTCDateTime),
    sa.Index("ix_session_documents_session", "session_id", "created_at"),
    sa.Index("ix_session_documents_created", "created_at"),
)

document_access = sa.Table(
    "document_access",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("document_id", sa.String, sa.ForeignKey("session_documents.id"), nullable=False),
    sa.Column("username", sa.String, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("remote", sa.String),
    sa.Index("ix_document_access_document", "document_id", "at"),
)

session_materials = sa.Table(
    "session_materials",
    metadata,
    sa.Column("session_id", sa.String, sa.ForeignKey("sessions.id"), primary_key=True),
    sa.Column("item", sa.String, primary_key=True),
    sa.Column("shown", sa.Boolean, nullable=False),
    sa.Column("by", sa.String, nullable=False),  # the specialist's username
    sa.Column("at", UTCDateTime, nullable=False),
)


class Document(msgspec.Struct, kw_only=True):
    id: str
    session_id: str
    kind: str
    path: str
    sha256: str
    size_bytes: int
    width: int
    height: int
    added_by: str
    created_at: dt.datetime
    deleted_at: dt.datetime | None


class DocumentAccess(msgspec.Struct, kw_only=True):
    document_id: str
    username: str
    at: dt.datetime
    remote: str | None


class MaterialTick(msgspec.Struct, kw_only=True):
    item: str
    shown: bool
    by: str
    at: dt.datetime


class SessionBrief(msgspec.Struct, kw_only=True, frozen=True):
    """What the documents and materials routes need to know of a session."""

    id: str
    call_id: str
    queue: str
    state: str
    site_id: str | None
    terminal_id: str | None
    created_at: dt.datetime


def _document(row: Any) -> Document:
    return Document(**{name: getattr(row, name) for name in Document.__struct_fields__})


class DocumentStore(StoreBase):
    """Session documents, their access log and the materials ticks."""

    async def session_brief(self, session_id: str) -> SessionBrief | None:
        query = sa.select(*(sessions.c[name] for name in SessionBrief.__struct_fields__)).where(
            sessions.c.id == session_id)
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else SessionBrief(**row._mapping)

    async def took_part(self, session_id: str, role: str, principal: str) -> bool:
        """Whether `principal` (a username, a terminal id) joined the session as `role`."""
        query = sa.select(sa.func.count()).select_from(session_participants).where(
            session_participants.c.session_id == session_id,
            session_participants.c.role == role,
            session_participants.c.principal_id == principal)
        async with self._read() as conn:
            return bool(await conn.scalar(query))

    async def add_document(self, document: Document) -> None:
        async with self._write() as conn:
            await conn.execute(session_documents.insert().values(msgspec.to_builtins(
                document, builtin_types=(dt.datetime,))))

    async def get_document(self, document_id: str) -> Document | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(session_documents).where(
                session_documents.c.id == document_id))).first()
        return None if row is None else _document(row)

    async def list_documents(self, session_id: str | None = None) -> list[Document]:
        """A session's documents (every session's if None), oldest first."""
        query = sa.select(session_documents).order_by(
            session_documents.c.created_at, session_documents.c.id)
        if session_id is not None:
            query = query.where(session_documents.c.session_id == session_id)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_document(row) for row in rows]

    async def log_document_access(self, document_id: str, username: str,
                                  remote: str | None) -> None:
        async with self._write() as conn:
            await conn.execute(document_access.insert().values(
                document_id=document_id, username=username, at=self._clock(), remote=remote))

    async def list_document_access(self, session_id: str) -> list[DocumentAccess]:
        """Who fetched the session's documents, oldest first."""
        query = (sa.select(document_access).join(
            session_documents, session_documents.c.id == document_access.c.document_id)
            .where(session_documents.c.session_id == session_id)
            .order_by(document_access.c.id))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [DocumentAccess(document_id=r.document_id, username=r.username, at=r.at,
                               remote=r.remote) for r in rows]

    async def expired_documents(self, before: dt.datetime) -> list[Document]:
        """Documents stored before `before` whose file has not been deleted."""
        require_aware(before=before)
        query = sa.select(session_documents).where(
            session_documents.c.created_at < before, session_documents.c.deleted_at.is_(None))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [_document(row) for row in rows]

    async def mark_document_deleted(self, document_id: str, when: dt.datetime) -> None:
        require_aware(when=when)
        async with self._write() as conn:
            await conn.execute(session_documents.update().where(
                session_documents.c.id == document_id).values(deleted_at=when))

    async def tick_material(self, session_id: str, item: str, shown: bool, by: str) -> None:
        """Record that the item was (or, unticked, was not) shown; the last word counts."""
        where = (session_materials.c.session_id == session_id,
                 session_materials.c.item == item)
        async with self._write() as conn:
            await conn.execute(session_materials.delete().where(*where))
            await conn.execute(session_materials.insert().values(
                session_id=session_id, item=item, shown=shown, by=by, at=self._clock()))

    async def list_ticks(self, session_id: str) -> list[MaterialTick]:
        query = (sa.select(session_materials).where(session_materials.c.session_id == session_id)
                 .order_by(session_materials.c.at, session_materials.c.item))
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [MaterialTick(item=r.item, shown=r.shown, by=r.by, at=r.at) for r in rows]
