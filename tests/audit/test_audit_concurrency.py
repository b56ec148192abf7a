"""Several writer processes append at once: the chain stays linear and complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from migrator.audit.models import AuditEvent, AuditHead
from migrator.audit.service import record, verify
from migrator.db import get_session
from migrator.org.models import Organisation

WRITER = Path(__file__).with_name("audit_writer.py")
ROOT = Path(__file__).resolve().parents[2]
WORKERS, TRANSACTIONS = 4, 25


@pytest.mark.slow
def test_concurrent_writer_processes_keep_a_valid_chain(database_url, ctx, runner, tmp_path):
    ready = tmp_path / "ready"
    ready.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    procs = [
        subprocess.Popen([sys.executable, str(WRITER), database_url, str(w), str(TRANSACTIONS),
                          str(ready), str(WORKERS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env, cwd=ROOT)
        for w in range(WORKERS)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    expected = sum(r["committed"] for r in results)
    assert expected == WORKERS * TRANSACTIONS * 2 * 4 // 5
    seqs = ctx.scalars(sa.select(AuditEvent.seq).order_by(AuditEvent.seq)).all()
    assert seqs == list(range(1, expected + 1))
    assert ctx.get(AuditHead, 1).last_seq == expected
    # the writers really interleaved (one after the other would switch WORKERS - 1 times)
    actors = ctx.scalars(sa.select(AuditEvent.actor_id).order_by(AuditEvent.seq)).all()
    switches = sum(1 for a, b in zip(actors, actors[1:], strict=False) if a != b)
    assert switches > 2 * WORKERS
    # each transaction's two events are adjacent in the chain
    rows = ctx.execute(sa.select(AuditEvent.actor_id, AuditEvent.action, AuditEvent.summary)
                       .order_by(AuditEvent.seq)).all()
    for first, second in zip(rows[::2], rows[1::2], strict=True):
        assert first.action == "concurrency.first" and second.action == "concurrency.second"
        assert (first.actor_id, first.summary) == (second.actor_id, second.summary)
    assert verify(ctx).ok
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0 and f"{expected} events verified" in result.output


@pytest.mark.postgres_only
def test_recording_early_cannot_deadlock_with_row_locks(app, ctx, make_org):
    """T1 records, then updates a row T2 holds; T2 then records. Locking the chain head at
    record() time would close a cycle (T1 holds the head and waits for the row, T2 holds the
    row and waits for the head); sealing at commit locks the head last, so both commit."""
    org = make_org(code="LOCKED")
    barrier = threading.Barrier(2, timeout=10)
    errors: list[BaseException] = []

    def first():
        with app.app_context():
            session = get_session()
            try:
                record("deadlock.t1_before")
                barrier.wait()
                session.execute(sa.update(Organisation).where(Organisation.id == org.id)
                                .values(name="by T1"))
                session.commit()
            except BaseException as exc:
                errors.append(exc)
                session.rollback()

    def second():
        with app.app_context():
            session = get_session()
            try:
                session.execute(sa.update(Organisation).where(Organisation.id == org.id)
                                .values(name="by T2"))
                barrier.wait()
                time.sleep(0.3)  # let T1 queue on the row lock
                record("deadlock.t2_after")
                session.commit()
            except BaseException as exc:
                errors.append(exc)
                session.rollback()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    actions = ctx.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions[-2:] == ["deadlock.t2_after", "deadlock.t1_before"]
    assert ctx.scalar(sa.select(Organisation.name).where(Organisation.id == org.id)) == "by T1"
    assert verify(ctx).ok
