"""The bot's replies reach the person's Max dialog (the sandbox is the only fake)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from enginetest import SANDBOX_TOKEN as TOKEN

from migrator.audit.models import AuditEvent
from migrator.db import utcnow
from migrator.mail.models import OutboxMessage
from migrator.max.client import MaxClient
from migrator.people.invite_models import BotMessage
from migrator.people.invites import (
    deep_link,
    handle_bot_started,
    issue_invitations,
    queue_bot_message,
    send_bot_messages,
)


@pytest.fixture
def max_client(sandbox):
    client = MaxClient(sandbox.url, TOKEN, max_retries=0, sleep=lambda s: None)
    yield client
    client.close()


def _rows(ctx):
    ctx.expire_all()
    return ctx.scalars(sa.select(BotMessage).order_by(BotMessage.id)).all()


def test_start_on_the_deep_link_links_and_the_reply_appears_in_the_dialog(
        ctx, sandbox, max_client, make_org, make_employee, make_group):
    ctl = sandbox
    org = make_org(name="МФЦ Центральный")
    emp = make_employee(org, full_name="Петрова Анна Сергеевна")
    group = make_group(org, members=[emp])
    issue_invitations(group)
    ctx.commit()
    body = ctx.scalars(sa.select(OutboxMessage)).one().body_text
    link = next(w for w in body.split() if w.startswith("https://max.ru/"))
    user_id = ctl.create_user("Анна")["user_id"]
    update = ctl.open_deeplink(user_id, link)
    assert update["update_type"] == "bot_started"
    assert deep_link(update["payload"]) == link

    result = handle_bot_started(update["payload"], update["user"]["user_id"],
                                update["user"].get("name"))
    assert result == "linked"
    ctx.commit()
    assert send_bot_messages(max_client) == 1
    assert send_bot_messages(max_client) == 0  # sent exactly once
    dialog = ctl.user_messages(user_id)
    assert len(dialog) == 1
    assert dialog[0]["body"]["text"].startswith("Вы подключены, Анна Сергеевна!")
    [row] = _rows(ctx)
    assert row.status == "sent" and row.attempts == 1 and row.sent_at is not None


def test_retryable_errors_back_off_and_permanent_ones_fail(ctx, app, sandbox, max_client):
    ctl = sandbox
    app.config.update(MAIL_RETRY_SECONDS=30)
    started = ctl.create_user("A")["user_id"]
    ctl.start(started, "x")
    never = ctl.create_user("B")["user_id"]
    now = utcnow()
    queue_bot_message("t:1", started, "Проверка", now=now)
    ctx.commit()
    ctl.faults(fail_503={"next": 1})
    assert send_bot_messages(max_client, now=now) == 0
    [row] = _rows(ctx)
    assert (row.status, row.attempts) == ("pending", 1) and "503" in row.last_error
    assert row.next_attempt_at == now + timedelta(seconds=30)
    assert send_bot_messages(max_client, now=now + timedelta(seconds=10)) == 0  # not due
    assert send_bot_messages(max_client, now=now + timedelta(seconds=31)) == 1
    assert len(ctl.user_messages(started)) == 1

    queue_bot_message("t:2", never, "Проверка", now=now)  # never pressed Start: 403
    ctx.commit()
    assert send_bot_messages(max_client, now=now + timedelta(minutes=1)) == 0
    failed = _rows(ctx)[1]
    assert (failed.status, failed.attempts) == ("failed", 1)
    ctx.expire_all()
    [event] = ctx.scalars(sa.select(AuditEvent).where(AuditEvent.action == "bot_message.failed"))
    assert json.loads(event.summary)["max_user_id"] == never
    assert "Проверка" not in event.summary
