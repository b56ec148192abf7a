"""The configured client: shared rate limiter, call audit, no deadlock on SQLite."""

from __future__ import annotations

import time

import sqlalchemy as sa
from maxapp_support import TOKEN

from migrator.audit.models import AuditEvent
from migrator.max.ratelimit import MaxRateHit, bucket_key
from migrator.max.service import get_client


def test_calls_are_rate_limited_in_the_database_and_audited_without_secrets(ctx):
    with get_client() as client:
        assert client.get_me()["username"] == "migrator_test_bot"
        client.get_subscriptions()
    buckets = ctx.scalars(sa.select(MaxRateHit.bucket)).all()
    assert buckets == [bucket_key(TOKEN)] * 2
    events = ctx.exec(sa.select(AuditEvent).where(AuditEvent.action == "max.call")
                      .order_by(AuditEvent.seq)).scalars().all()
    assert [e.summary.count('"status":200') for e in events] == [1, 1]
    assert '"path":"/me"' in events[0].summary and '"method":"GET"' in events[0].summary
    assert all(TOKEN not in e.summary for e in events)
    ctx.rollback()


def test_a_call_inside_an_open_transaction_neither_deadlocks_nor_loses_its_audit(ctx, db_kind):
    from migrator.org.models import Organisation

    ctx.scalar(sa.select(sa.func.count()).select_from(Organisation))  # a transaction is open
    assert ctx.in_transaction()
    started = time.monotonic()
    with get_client() as client:
        client.get_me()
    assert time.monotonic() - started < 5  # not the 30 s SQLite busy timeout
    ctx.commit()  # the event was recorded in this (the caller's) transaction
    n = ctx.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                   .where(AuditEvent.action == "max.call"))
    assert n == 1
    hits = ctx.scalar(sa.select(sa.func.count()).select_from(MaxRateHit))
    # SQLite: counted on the in-process limiter (the DB lock is the caller's); PostgreSQL:
    # the shared limiter on its own connection
    assert hits == (0 if db_kind == "sqlite" else 1)
    ctx.rollback()


def test_without_a_token_there_is_no_client(app, ctx):
    app.config["MAX_BOT_TOKEN"] = ""
    try:
        get_client()
    except ValueError as exc:
        assert "MAX_BOT_TOKEN" in str(exc)
    else:
        raise AssertionError("a client without a token")


def test_a_call_about_a_known_chat_is_audited_under_the_chats_org(
        ctx, sandbox, make_org, make_group):
    from migrator.max.models import MaxChat

    owner = sandbox.user()
    own_org, group_org = make_org(code="ORG-A"), make_org(code="ORG-B")
    with_org, via_group, unknown = (sandbox.create_chat(f"Чат {i}", owner)["chat_id"]
                                    for i in range(3))
    for chat_id in (with_org, via_group, unknown):
        sandbox.add_bot(chat_id)
    ctx.add(MaxChat(chat_id=with_org, status="discovered", org_id=own_org.id))
    linked = MaxChat(chat_id=via_group, status="linked")
    ctx.add(linked)
    ctx.flush()
    group = make_group(group_org)
    group.max_chat_id = linked.id
    ctx.add(group)
    ctx.commit()
    with get_client() as client:
        for chat_id in (with_org, via_group, unknown):
            client.get_chat(chat_id)
        client.get_me()
    events = ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == "max.call")
                         .order_by(AuditEvent.seq)).all()
    assert [(e.object_id, e.org_id) for e in events] == [
        (str(with_org), own_org.id), (str(via_group), group_org.id), (str(unknown), None),
        (None, None)]
    ctx.rollback()
