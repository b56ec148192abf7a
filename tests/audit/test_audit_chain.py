"""The hash chain: recording inside transactions, tamper evidence, the append-only tables."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from audit_support import raw_engine, triggers_lifted
from sqlmodel import select

from migrator.audit.models import AuditEvent, AuditHead
from migrator.audit.service import Actor, acting_as, compute_hash, record, verify
from migrator.db import utcnow


def _record_many(ctx, n: int, prefix: str = "test.event") -> None:
    with acting_as(Actor("job", "tester", "test job")):
        for i in range(n):
            record(f"{prefix}{i % 3}", object_type="thing", object_id=i, org_id=None,
                   summary={"i": i, "text": "Привет"})
            if i % 4 == 3:
                ctx.commit()
    ctx.commit()


def test_events_are_chained_at_commit_and_rolled_back_with_the_transaction(ctx):
    ev = record("test.one", summary={"a": 1})
    ctx.commit()
    assert ev.seq == 1 and ev.prev_hash == "0" * 64 and ev.hash == compute_hash(ev)
    record("test.discarded")
    ctx.rollback()
    nested = ctx.begin_nested()
    record("test.discarded_in_savepoint")
    nested.rollback()
    with ctx.begin_nested():
        record("test.kept_from_savepoint")
    two = record("test.two")
    ctx.commit()
    rows = ctx.exec(select(AuditEvent.seq, AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert rows == [(1, "test.one"), (2, "test.kept_from_savepoint"), (3, "test.two")]
    assert two.prev_hash != "0" * 64
    head = ctx.get(AuditHead, 1)
    assert (head.last_seq, head.last_hash) == (3, two.hash)
    assert verify(ctx).ok


def test_reading_the_trail_in_the_same_transaction_sees_pending_events(ctx):
    record("test.pending")
    # like an autoflush: the event is sealed before the query runs
    assert ctx.exec(select(AuditEvent.action)).all() == ["test.pending"]
    ctx.commit()
    assert ctx.get(AuditHead, 1).last_seq == 1


def test_verify_cli_ok_and_resume(ctx, runner):
    _record_many(ctx, 12)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert "12 events verified" in result.output
    result = runner.invoke(args=["audit", "verify", "--from-seq", "10"])
    assert result.exit_code == 0, result.output
    assert "3 events verified from #10" in result.output


def test_tampered_event_is_named_by_verify(ctx, runner, database_url):
    _record_many(ctx, 10)
    with triggers_lifted(database_url) as conn:
        conn.execute(sa.text("UPDATE audit_event SET summary = :s WHERE seq = 6"),
                     {"s": '{"i":5,"text":"forged"}'})
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at event #6 " in result.output
    assert "content does not match its hash" in result.output
    assert "5 events before it are intact" in result.output
    # Resuming after the broken event: #7 still links to #6's stored hash.
    result = runner.invoke(args=["audit", "verify", "--from-seq", "7"])
    assert result.exit_code == 0, result.output


def test_rehashed_forgery_breaks_the_next_link(ctx, runner, database_url):
    _record_many(ctx, 8)
    with triggers_lifted(database_url) as conn:
        row = conn.execute(sa.select(AuditEvent.__table__).where(
            AuditEvent.__table__.c.seq == 4)).one()
        forged = AuditEvent(**{**row._mapping, "actor_label": "someone else"})
        conn.execute(sa.text("UPDATE audit_event SET actor_label = 'someone else', hash = :h "
                             "WHERE seq = 4"), {"h": compute_hash(forged)})
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at event #5 " in result.output
    assert "link to the previous event broken" in result.output


def test_deleted_event_is_named_as_a_gap(ctx, runner, database_url):
    _record_many(ctx, 9)
    with triggers_lifted(database_url) as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE seq = 5"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at event #5" in result.output
    assert "event missing from the chain (the next one is #6)" in result.output


def test_deleted_tail_is_detected_through_the_head(ctx, runner, database_url):
    _record_many(ctx, 6)
    with triggers_lifted(database_url) as conn:
        conn.execute(sa.text("DELETE FROM audit_event WHERE seq >= 5"))
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "events #5..#6 are missing" in result.output


@pytest.mark.parametrize("statement", [
    "UPDATE audit_event SET action = 'forged' WHERE seq = 2",
    "DELETE FROM audit_event WHERE seq = 2",
    "DELETE FROM audit_event",
])
def test_update_and_delete_are_refused_by_the_database(ctx, database_url, statement):
    _record_many(ctx, 3)
    engine = raw_engine(database_url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()
    assert ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 3
    assert verify(ctx).ok


@pytest.mark.postgres_only
def test_truncate_is_refused_on_postgresql(ctx, database_url):
    _record_many(ctx, 2)
    engine = raw_engine(database_url)
    try:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"), engine.begin() as conn:
            conn.exec_driver_sql("TRUNCATE audit_event")
    finally:
        engine.dispose()
    assert ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 2


def test_event_page_flags_an_altered_event(ctx, database_url, client, login, make_user):
    admin = make_user("admin")  # event #1
    _record_many(ctx, 3)
    with triggers_lifted(database_url) as conn:
        conn.execute(sa.text("UPDATE audit_event SET object_id = '999' WHERE seq = 3"))
    login(client, admin)
    assert "НЕ совпадает" in client.get("/audit/3").get_data(as_text=True)
    assert "Содержимое совпадает с хешем" in client.get("/audit/2").get_data(as_text=True)


def test_times_never_decrease_along_the_chain(ctx):
    # another machine whose clock runs an hour ahead wrote event #1
    ahead = AuditEvent(seq=1, created_at=utcnow() + timedelta(hours=1), actor_type="job",
                       actor_id="fast-clock", action="test.ahead", summary="{}",
                       prev_hash="0" * 64)
    ahead.hash = compute_hash(ahead)
    ctx.add(ahead)
    ctx.execute(sa.update(AuditHead).values(last_seq=1, last_hash=ahead.hash))
    ctx.commit()
    later = record("test.here")
    ctx.commit()
    assert later.seq == 2 and later.created_at == ahead.created_at
    assert verify(ctx).ok
