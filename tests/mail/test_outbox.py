"""The e-mail outbox against a real SMTP server: queueing, sending once, retries, crashes."""

from __future__ import annotations

import json
import smtplib
from datetime import timedelta

import pytest
import sqlalchemy as sa
from smtp_helpers import SmtpSink

from migrator.audit.models import AuditEvent
from migrator.db import get_engine, utcnow
from migrator.mail.models import OutboxMessage
from migrator.mail.outbox import claim_due
from migrator.mail.service import build_message, queue_email, send_due
from migrator.mail.templates import render_email


def _queue(n=1, prefix="k", **kw):
    msgs = []
    for i in range(n):
        subject, text, html = render_email(
            "report", full_name="Иванов Иван Иванович", group_name=f"Группа {i}",
            chat_title="Чат", members_total=10, members_in_chat=9)
        msgs.append(queue_email(f"{prefix}:{i}", f"user{i}@example.org", subject, text, html,
                                kind="report", **kw))
    return msgs


def _rows(ctx):
    ctx.expire_all()
    return ctx.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


def _audit(ctx, action):
    ctx.expire_all()
    return ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()


def test_queue_twice_with_the_same_key_makes_one_row_in_the_callers_transaction(ctx, app):
    app.config["MAIL_FROM"] = "Migrator <migrator@region.example>"
    first = queue_email("invite:1:1", "a@example.org", "Тема", "текст", kind="invite")
    again = queue_email("invite:1:1", "other@example.org", "Другая", "другой", kind="invite")
    assert again.id == first.id and again.to_addr == "a@example.org"
    assert first.message_id.endswith("@region.example>")
    ctx.rollback()  # not committed by queue_email
    assert _rows(ctx) == []
    queue_email("invite:1:1", "a@example.org", "Тема", "текст", kind="invite")
    ctx.commit()
    assert len(_rows(ctx)) == 1


def test_queue_refuses_header_injection(ctx):
    with pytest.raises(ValueError):
        queue_email("x", "a@example.org\r\nBcc: evil@example.org", "s", "t", kind="digest")
    msg = queue_email("y", "a@example.org", "Тема\r\nBcc: evil@example.org", "t", kind="digest")
    assert "\n" not in msg.subject


def test_send_due_sends_each_message_exactly_once(ctx, smtp_server):
    queued = _queue(3)
    ctx.commit()
    stats = send_due()
    assert (stats.claimed, stats.sent, stats.retried, stats.failed) == (3, 3, 0, 0)
    assert send_due().claimed == 0
    smtp_server.wait_for(3)
    assert len(smtp_server.messages) == 3
    assert len(set(smtp_server.peers)) == 1  # one SMTP session for the batch
    got = {m["Message-ID"]: m for m in smtp_server.messages}
    assert set(got) == {q.message_id for q in queued}
    msg = got[queued[0].message_id]
    assert msg["To"] == "user0@example.org"
    assert msg["Subject"] == "Перевод группы «Группа 0» в Max завершён"
    assert "Уважаемый Иван Иванович!" in msg.get_body(("plain",)).get_content()
    assert "<p>Уважаемый Иван Иванович!</p>" in msg.get_body(("html",)).get_content()
    rows = _rows(ctx)
    assert {r.status for r in rows} == {"sent"} and all(r.sent_at for r in rows)
    events = _audit(ctx, "mail.sent")
    assert len(events) == 3
    summary = json.loads(events[0].summary)
    assert set(summary) == {"to", "kind", "idem_key", "message_id"}
    assert events[0].actor_id == "mailer"


def test_smtp_down_is_retried_with_backoff_then_delivered_once(ctx, app):
    sink = SmtpSink()  # not started yet: nothing listens on its port
    app.config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port, MAIL_RETRY_SECONDS=60)
    now = utcnow()
    _queue(2, now=now)
    ctx.commit()
    stats = send_due(now=now)
    assert (stats.sent, stats.retried) == (0, 2)
    rows = _rows(ctx)
    assert {r.status for r in rows} == {"pending"}
    assert all(r.attempts == 1 and r.last_error for r in rows)
    assert all(r.next_attempt_at == now + timedelta(seconds=60) for r in rows)
    assert send_due(now=now + timedelta(seconds=30)).claimed == 0  # backoff respected
    sink.start()
    try:
        stats = send_due(now=now + timedelta(seconds=61))
        assert stats.sent == 2
        assert send_due(now=now + timedelta(hours=1)).claimed == 0
        sink.wait_for(2)
        assert len(sink.messages) == 2
    finally:
        sink.stop()
    assert {r.status for r in _rows(ctx)} == {"sent"}


def test_gives_up_after_max_attempts(ctx, app):
    app.config.update(SMTP_PORT=SmtpSink().port, MAIL_MAX_ATTEMPTS=3, MAIL_RETRY_SECONDS=10)
    now = utcnow()
    _queue(1, now=now)
    ctx.commit()
    delays = []
    for _ in range(3):
        send_due(now=now)
        row = _rows(ctx)[0]
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    assert row.status == "failed" and row.attempts == 3
    assert delays[:2] == [10, 20]  # exponential
    assert send_due(now=now + timedelta(days=1)).claimed == 0
    [event] = _audit(ctx, "mail.failed")
    assert json.loads(event.summary)["attempts"] == 3


def test_temporary_refusal_retries_only_that_message(ctx, smtp_server):
    smtp_server.fail_next = 1
    now = utcnow()
    _queue(2, now=now)
    ctx.commit()
    stats = send_due(now=now)
    assert (stats.sent, stats.retried) == (1, 1)
    failed = [r for r in _rows(ctx) if r.status == "pending"][0]
    assert "451" in failed.last_error
    assert send_due(now=now + timedelta(minutes=2)).sent == 1
    assert len(smtp_server.wait_for(2)) == 2
    assert {m["To"] for m in smtp_server.messages} == {"user0@example.org", "user1@example.org"}


def test_permanent_refusal_fails_at_once(ctx, smtp_server):
    smtp_server.reject = {"user0@example.org"}
    _queue(2)
    ctx.commit()
    stats = send_due()
    assert (stats.sent, stats.failed) == (1, 1)
    bad = _rows(ctx)[0]
    assert bad.status == "failed" and "550" in bad.last_error
    assert len(_audit(ctx, "mail.failed")) == 1


def test_a_crash_after_sending_resends_with_the_same_message_id(ctx, app, smtp_server):
    then = utcnow() - timedelta(minutes=10)
    [msg] = _queue(1, now=then)
    ctx.commit()
    # The crashed sender: claimed (committed), delivered, died before marking "sent".
    claim = claim_due(ctx, OutboxMessage, limit=10, now=then, lease_seconds=300)
    assert [r.id for r in claim.rows] == [msg.id]
    with smtplib.SMTP(smtp_server.host, smtp_server.port) as conn:
        conn.send_message(build_message(claim.rows[0], app.config["MAIL_FROM"]))
    assert _rows(ctx)[0].status == "sending"
    stats = send_due()
    assert (stats.resent, stats.sent) == (1, 1)
    smtp_server.wait_for(2)
    assert [m["Message-ID"] for m in smtp_server.messages] == [msg.message_id] * 2
    assert _rows(ctx)[0].status == "sent"


def test_a_live_lease_is_not_taken_over(ctx, smtp_server):
    _queue(1)
    ctx.commit()
    claim_due(ctx, OutboxMessage, limit=10, now=utcnow(), lease_seconds=300)
    assert send_due().claimed == 0
    assert send_due(now=utcnow() + timedelta(minutes=6)).resent == 1
    assert len(smtp_server.wait_for(1)) == 1


def test_smtp_login_and_a_wrong_password_kept_out_of_errors(ctx, app):
    sink = SmtpSink(auth=("mailer", "right-pass")).start()
    try:
        # (aiosmtpd stalls after a failed AUTH: a short timeout keeps the test fast)
        app.config.update(SMTP_HOST=sink.host, SMTP_PORT=sink.port, SMTP_USER="mailer",
                          SMTP_PASSWORD="s3cret-wrong", SMTP_TIMEOUT=1)
        now = utcnow()
        _queue(1, now=now)
        ctx.commit()
        assert send_due(now=now).retried == 1
        row = _rows(ctx)[0]
        assert row.last_error and "s3cret-wrong" not in row.last_error
        assert sink.messages == []
        app.config["SMTP_PASSWORD"] = "right-pass"
        assert send_due(now=now + timedelta(minutes=5)).sent == 1
        assert sink.logins == ["mailer"] and len(sink.wait_for(1)) == 1
    finally:
        sink.stop()


@pytest.mark.postgres_only
def test_concurrent_senders_skip_locked_rows(ctx, app):
    _queue(4)
    ctx.commit()
    engine = get_engine()
    with engine.connect() as other:
        tx = other.begin()
        locked = other.execute(sa.text(
            "SELECT id FROM outbox_message ORDER BY id LIMIT 2 FOR UPDATE")).scalars().all()
        claim = claim_due(ctx, OutboxMessage, limit=10, now=utcnow(), lease_seconds=300)
        assert sorted(r.id for r in claim.rows) == sorted(
            r.id for r in _rows(ctx) if r.id not in locked)
        assert len(claim.rows) == 2
        tx.rollback()


def test_a_dropped_session_is_reopened_for_the_rest_of_the_batch(ctx, smtp_server):
    smtp_server.drop_next = 1
    _queue(3)
    ctx.commit()
    stats = send_due()
    assert (stats.sent, stats.retried) == (2, 1)
    smtp_server.wait_for(2)
    assert len(set(smtp_server.peers)) == 2  # a new session after the 421
    assert "421" in [r for r in _rows(ctx) if r.status == "pending"][0].last_error


def test_a_run_gives_the_outbox_only_its_time(ctx, smtp_server):
    """With the run's time for the outbox up, nothing more is started: claimed messages go
    back to the outbox, due at once, and the next run sends them (each exactly once)."""
    import time

    from migrator.mail.outbox import SendStats, send_claimed

    _queue(5)
    ctx.commit()
    assert send_due(deadline=time.monotonic() - 1).claimed == 0  # time already up
    now = utcnow()
    claim = claim_due(ctx, OutboxMessage, limit=5, now=now, lease_seconds=30)

    def slow_send(row):  # the first message takes longer than the time left
        time.sleep(0.3)

    stats = SendStats()
    more = send_claimed(ctx, OutboxMessage, claim, slow_send, stats=stats, now=now,
                        lease_seconds=30, max_attempts=3, retry_base=1,
                        deadline=time.monotonic() + 0.1)
    assert more is False and stats.sent == 1 and stats.released == 4
    rows = _rows(ctx)
    assert [r.status for r in rows] == ["sent"] + ["pending"] * 4
    assert all(r.next_attempt_at <= utcnow() for r in rows[1:])
    assert send_due().sent == 4
    assert len(smtp_server.wait_for(4)) == 4
