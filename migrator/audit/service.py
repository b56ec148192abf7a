"""Recording and verifying audit events.

Every event is written in the same transaction as the change it records. Appends are
serialised by updating the single ``audit_head`` row first (a row lock on PostgreSQL, the
write lock on SQLite), so the hash chain stays linear with many writers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import g, has_request_context, request
from sqlmodel import Session, select

from migrator.audit.models import AuditEvent, AuditHead
from migrator.db import get_session, utcnow

GENESIS_HASH = "0" * 64


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
    actor = g.get("audit_actor")
    if actor is not None:
        return actor
    if has_request_context():
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            return Actor("user", str(current_user.id), current_user.email)
    return SYSTEM


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_content(ev: AuditEvent) -> dict:
    """The fields covered by an event's hash (everything but the hash itself)."""
    return {
        "seq": ev.seq,
        "created_at": _ts(ev.created_at),
        "actor_type": ev.actor_type,
        "actor_id": ev.actor_id,
        "actor_label": ev.actor_label,
        "action": ev.action,
        "object_type": ev.object_type,
        "object_id": ev.object_id,
        "org_id": ev.org_id,
        "summary": ev.summary,
        "request_id": ev.request_id,
        "client_ip": ev.client_ip,
        "prev_hash": ev.prev_hash,
    }


def compute_hash(ev: AuditEvent) -> str:
    return hashlib.sha256(canonical(event_content(ev)).encode()).hexdigest()


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
    """Append an event to the chain inside the caller's transaction (not committed here)."""
    session = session or get_session()
    actor = actor or current_actor()
    head = session.execute(
        sa.update(AuditHead)
        .where(AuditHead.id == 1)
        .values(last_seq=AuditHead.last_seq + 1)
        .returning(AuditHead.last_seq, AuditHead.last_hash)
    ).one()
    req_id = client_ip = None
    if has_request_context():
        req_id = g.get("request_id")
        client_ip = request.remote_addr if actor.type == "user" else None
    else:
        req_id = g.get("request_id") if g else None
    ev = AuditEvent(
        seq=head.last_seq,
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
        prev_hash=head.last_hash,
    )
    # Round-trip precision: the database keeps microseconds, so does the hash.
    ev.hash = compute_hash(ev)
    session.add(ev)
    session.execute(
        sa.update(AuditHead).where(AuditHead.id == 1).values(last_hash=ev.hash)
    )
    return ev


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; report the first event whose hash or link is wrong."""
    prev_hash, expected_seq, checked = GENESIS_HASH, 1, 0
    while True:
        rows = session.exec(
            select(AuditEvent).where(AuditEvent.seq >= expected_seq)
            .order_by(AuditEvent.seq).limit(batch)
        ).all()
        if not rows:
            break
        for ev in rows:
            if ev.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, "event missing from the chain")
            if ev.prev_hash != prev_hash:
                return VerifyResult(False, checked, ev.seq, "link to the previous event broken")
            if compute_hash(ev) != ev.hash:
                return VerifyResult(False, checked, ev.seq, "content does not match its hash")
            prev_hash, expected_seq, checked = ev.hash, ev.seq + 1, checked + 1
        session.expunge_all()
    head = session.get(AuditHead, 1)
    if head is not None and head.last_seq != expected_seq - 1:
        return VerifyResult(False, checked, expected_seq, "events after this one are missing")
    return VerifyResult(True, checked)
