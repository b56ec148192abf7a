"""Bulk writing for region-scale seeding: COPY on PostgreSQL, executemany on SQLite, and the
audit chain appended in committed batches."""

from __future__ import annotations

import random
import sys
import time as _time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import click
import sqlalchemy as sa

from migrator.audit.models import AuditEvent, AuditHead
from migrator.audit.service import canonical, compute_hash
from migrator.db import get_engine, is_sqlite
from migrator.demo.data import AUDIT_ACTIONS


class Bulk:
    """Fast appends to one table: COPY on PostgreSQL, executemany on SQLite."""

    def __init__(self, conn, table: sa.Table):
        self.conn, self.table = conn, table
        self.pg = conn.dialect.name == "postgresql"

    def write(self, rows: list[dict]) -> None:
        if not rows:
            return
        if not self.pg:
            self.conn.execute(self.table.insert(), rows)
            return
        cols = list(rows[0])
        raw = self.conn.connection.driver_connection
        with raw.cursor() as cur, cur.copy(
                f'COPY "{self.table.name}" ({", ".join(cols)}) FROM STDIN') as copy:
            for r in rows:
                copy.write_row([_naive(r[c]) for c in cols])


def _naive(v):
    if isinstance(v, datetime):
        return v.astimezone(UTC).replace(tzinfo=None)
    return v


def next_id(conn, table) -> int:
    return (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1


def say(msg: str) -> None:
    click.echo(msg)
    sys.stdout.flush()

def bulk_audit(n: int, org_ids: list[int], now: datetime, rng: random.Random,
               t0: float | None = None, batch: int = 50000) -> int:
    """Append ``n`` synthetic events to the hash chain, in committed batches. Each batch
    takes the chain's head row first, so the chain stays linear and verifiable."""
    engine = get_engine()
    t0 = t0 if t0 is not None else _time.monotonic()
    table = AuditEvent.__table__
    written = 0
    span = timedelta(days=30).total_seconds()
    while written < n:
        size = min(batch, n - written)
        with engine.begin() as conn:
            head = conn.execute(
                sa.update(AuditHead).where(AuditHead.id == 1)
                .values(last_seq=AuditHead.last_seq)
                .returning(AuditHead.last_seq, AuditHead.last_hash)).one()
            seq, prev = head.last_seq, head.last_hash
            last_at = conn.execute(sa.select(sa.func.max(table.c.created_at))).scalar()
            last_at = last_at.replace(tzinfo=UTC) if last_at and last_at.tzinfo is None \
                else last_at
            base = now - timedelta(days=30)
            rows = []
            for k in range(size):
                seq += 1
                at = base + timedelta(seconds=span * (written + k) / max(1, n))
                if last_at is not None and at <= last_at:
                    at = last_at + timedelta(microseconds=1)
                last_at = at
                action, otype = AUDIT_ACTIONS[(seq * 7) % len(AUDIT_ACTIONS)]
                ev = SimpleNamespace(
                    seq=seq, created_at=at, actor_type="job", actor_id="demo",
                    actor_label="demo generator", action=action, object_type=otype,
                    object_id=str(rng.randint(1, 100000)), org_id=rng.choice(org_ids),
                    summary=canonical({"n": seq % 97, "source": "demo"}), request_id=None,
                    client_ip=None, prev_hash=prev)
                ev.hash = compute_hash(ev)
                prev = ev.hash
                row = dict(vars(ev))
                rows.append(row)
            Bulk(conn, table).write(rows)
            conn.execute(sa.update(AuditHead).where(AuditHead.id == 1)
                         .values(last_seq=seq, last_hash=prev))
        written += size
        say(f"  audit events: {written}/{n} ({_time.monotonic() - t0:.1f}s)")
    return written


def fix_sequences() -> None:
    engine = get_engine()
    if is_sqlite(engine):
        return
    with engine.begin() as conn:
        for table in ("organisation", "employee", "source_group", "max_chat", "wave", "step",
                      "audit_event"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"))


def analyze() -> None:
    engine = get_engine()
    with engine.connect() as conn:
        if is_sqlite(engine):
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        else:  # VACUUM too: index-only scans need the visibility map of the new rows
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE")

