"""Recording and verifying audit events.

``record()`` builds an event in the caller's transaction; the event is *sealed* (given its
sequence number, time, previous hash and hash) and inserted when that transaction commits,
in the same transaction. Sealing updates the single ``audit_head`` row (a row lock on
PostgreSQL, the database write lock on SQLite), so the chain stays linear with many writer
processes. Because sealing happens in ``before_commit``, after the transaction's own changes
are flushed, the head is the last lock a transaction takes and holds only for the commit:
writers never wait on each other for the length of a whole import or a Max API call, and the
head cannot take part in a deadlock. A transaction that reads the audit table after recording
(read-your-writes) seals its pending events first, like an autoflush. A rollback (of the
transaction, or of the savepoint the event was recorded in) discards the event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import g, has_app_context, has_request_context, request
from flask_login import current_user
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.sql.util import find_tables
from sqlmodel import Session

from migrator.audit.models import AuditEvent, AuditHead
from migrator.db import get_session, utcnow

GENESIS_HASH = "0" * 64
_PENDING = "audit_pending"


@dataclass(frozen=True)
class Actor:
    type: str  # user | job | max | system
    id: str | None = None
    label: str | None = None


SYSTEM = Actor("system", "system", "system")


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute events recorded inside the block to ``actor`` (jobs, webhook intake)."""
    previous = g.get("audit_actor")
    g.audit_actor = actor
    try:
        yield actor
    finally:
        g.audit_actor = previous


def current_actor() -> Actor:
    actor = g.get("audit_actor") if has_app_context() else None
    if actor is not None:
        return actor
    if has_request_context() and current_user and current_user.is_authenticated:
        return Actor("user", str(current_user.id), current_user.email)
    return SYSTEM


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


HASHED_FIELDS = ("seq", "created_at", "actor_type", "actor_id", "actor_label", "action",
                 "object_type", "object_id", "org_id", "summary", "request_id", "client_ip",
                 "prev_hash")


def event_content(ev) -> dict:
    """The fields covered by an event's hash (everything but the hash itself).

    ``ev`` is an :class:`AuditEvent` or any row with the same attributes.
    """
    content = {name: getattr(ev, name) for name in HASHED_FIELDS}
    content["created_at"] = _ts(ev.created_at)
    return content


def canonical_content(ev) -> str:
    """The exact text whose SHA-256 is the event's hash."""
    return canonical(event_content(ev))


def compute_hash(ev) -> str:
    return hashlib.sha256(canonical_content(ev).encode()).hexdigest()


def record(
    action: str,
    *,
    object_type: str | None = None,
    object_id: object = None,
    org_id: int | None = None,
    summary: dict | None = None,
    actor: Actor | None = None,
    session: Session | None = None,
) -> AuditEvent:
    """Add an event to the caller's transaction; it is chained and written on commit.

    The returned event gets its ``seq``, ``created_at`` and hashes when sealed (at commit,
    or when the same transaction first reads the audit table).
    """
    session = session or get_session()
    actor = actor or current_actor()
    req_id = client_ip = None
    if has_request_context():
        req_id = g.get("request_id")
        client_ip = request.remote_addr if actor.type == "user" else None
    elif has_app_context():
        req_id = g.get("request_id")
    ev = AuditEvent(
        seq=0,
        created_at=utcnow(),
        actor_type=actor.type,
        actor_id=actor.id,
        actor_label=actor.label,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        org_id=org_id,
        summary=canonical(summary or {}),
        request_id=req_id,
        client_ip=client_ip,
        prev_hash="",
        hash="",
    )
    if session.get_transaction() is None:
        session.connection()  # begin now, so a rollback of this transaction drops the event
    tx = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(_PENDING, []).append((tx, ev))
    return ev


def seal_pending(session: OrmSession) -> list[AuditEvent]:
    """Chain and insert the session's pending events now (normally done at commit)."""
    pending = session.info.get(_PENDING)
    if not pending:
        return []
    events = [ev for _tx, ev in pending]
    pending.clear()
    session.flush()  # the caller's own changes take their locks first: the head comes last
    head = session.execute(
        sa.update(AuditHead)
        .where(AuditHead.id == 1)
        .values(last_seq=AuditHead.last_seq + len(events))
        .returning(AuditHead.last_seq, AuditHead.last_hash)
    ).one()
    seq, prev = head.last_seq - len(events), head.last_hash
    # Taken under the head lock and never before the previous event (clocks of several
    # machines may differ a little): times never decrease along the chain.
    now = utcnow()
    if seq:
        last_at = session.scalar(sa.select(AuditEvent.created_at).where(AuditEvent.seq == seq))
        if last_at is not None and last_at > now:
            now = last_at
    for ev in events:
        seq += 1
        ev.seq, ev.created_at, ev.prev_hash = seq, now, prev
        ev.hash = prev = compute_hash(ev)
    session.add_all(events)
    session.execute(sa.update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev))
    session.flush(events)
    return events


def _within(tx, ancestor) -> bool:
    while tx is not None:
        if tx is ancestor:
            return True
        tx = tx.parent
    return False


@sa_event.listens_for(OrmSession, "before_commit")
def _seal_on_commit(session: OrmSession) -> None:
    if not session.in_nested_transaction():  # a savepoint release waits for the real commit
        seal_pending(session)


@sa_event.listens_for(OrmSession, "after_soft_rollback")
def _drop_on_rollback(session: OrmSession, previous_transaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(tx, ev) for tx, ev in pending if not _within(tx, previous_transaction)]


@sa_event.listens_for(OrmSession, "after_transaction_end")
def _drop_on_end(session: OrmSession, transaction) -> None:
    if transaction.parent is None and session.info.get(_PENDING):
        session.info[_PENDING].clear()  # the transaction ended without a commit


_AUDIT_TABLES = {AuditEvent.__table__, AuditHead.__table__}


@sa_event.listens_for(OrmSession, "do_orm_execute")
def _seal_before_reading(state) -> None:
    if not state.is_select or not state.session.info.get(_PENDING):
        return
    if any(t in _AUDIT_TABLES for t in find_tables(state.statement, include_joins=True,
                                                   include_selects=True)):
        seal_pending(state.session)


# --- verification ---------------------------------------------------------------------


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    last_seq: int = 0
    last_hash: str = GENESIS_HASH


def verify(session: Session, *, from_seq: int = 1, batch: int = 5000,
           progress=None) -> VerifyResult:
    """Walk the chain in order; report the first event whose hash or link is wrong.

    ``from_seq`` resumes a previous run: that event's link is checked against the stored
    hash of the event before it. ``progress(checked, seq)`` is called after every batch.
    Each batch is its own short read transaction (SQLite keeps no lock between batches), so
    the session is rolled back as it goes: pass one without uncommitted work.
    """
    table = AuditEvent.__table__
    from_seq = max(1, from_seq)
    prev_hash = GENESIS_HASH
    if from_seq > 1:
        prev_hash = session.scalar(sa.select(table.c.hash).where(table.c.seq == from_seq - 1))
        if prev_hash is None:
            return VerifyResult(False, 0, from_seq - 1, "event missing from the chain")
    expected_seq, checked = from_seq, 0
    while True:
        rows = session.execute(
            sa.select(table).where(table.c.seq >= expected_seq)
            .order_by(table.c.seq).limit(batch)
        ).all()
        session.rollback()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq,
                                    f"event missing from the chain (the next one is #{ev.seq})",
                                    expected_seq - 1, prev_hash)
            if ev.prev_hash != prev_hash:
                return VerifyResult(False, checked, ev.seq, "link to the previous event broken",
                                    expected_seq - 1, prev_hash)
            if compute_hash(ev) != ev.hash:
                return VerifyResult(False, checked, ev.seq, "content does not match its hash",
                                    expected_seq - 1, prev_hash)
            prev_hash, expected_seq, checked = ev.hash, ev.seq + 1, checked + 1
        if progress is not None:
            progress(checked, expected_seq - 1)
    head = session.get(AuditHead, 1)
    session.rollback()
    if head is not None and head.last_seq > expected_seq - 1:
        return VerifyResult(False, checked, expected_seq,
                            f"events #{expected_seq}..#{head.last_seq} are missing "
                            f"(the chain head is #{head.last_seq})", expected_seq - 1, prev_hash)
    if head is not None and head.last_seq == expected_seq - 1 and head.last_hash != prev_hash:
        return VerifyResult(False, checked, expected_seq - 1,
                            "the last event's hash differs from the chain head",
                            expected_seq - 1, prev_hash)
    return VerifyResult(True, checked, last_seq=expected_seq - 1, last_hash=prev_hash)
